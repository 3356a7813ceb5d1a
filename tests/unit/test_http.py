"""Content negotiation for /graphql: which JSON media type a given Accept header gets."""

from __future__ import annotations

import pytest

from heysh.http import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, negotiate

GRJ = GRAPHQL_RESPONSE_JSON


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/*", APPLICATION_JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", APPLICATION_JSON),
        (GRJ, GRJ),
        ("Application/GraphQL-Response+JSON", GRJ),
        (APPLICATION_JSON, APPLICATION_JSON),
        (f"{GRJ}, {APPLICATION_JSON};q=0.9", GRJ),
        (f"{APPLICATION_JSON}, {GRJ}", GRJ),
        (f"{APPLICATION_JSON}, {GRJ};q=0.9", APPLICATION_JSON),
        (f"{GRJ};q=0.5, */*", APPLICATION_JSON),
        (f"{APPLICATION_JSON};q=0, */*", GRJ),
        (f"{GRJ}, multipart/mixed", GRJ),
        ("text/html, application/json;q=bogus, */*;q=0.1", APPLICATION_JSON),
    ],
)
def test_accept_header_selects_the_response_media_type(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    "accept", ["text/html", "text/csv, image/*", f"{GRJ};q=0, {APPLICATION_JSON};q=0", "*/*;q=0"]
)
def test_accept_header_allowing_neither_json_type_is_not_acceptable(accept: str) -> None:
    assert negotiate(accept) is None
