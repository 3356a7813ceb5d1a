"""Raw requests for hostile-input tests: bodies any client could send, checked as sent.

httpx's own ``json=`` encodes as UTF-8, which cannot carry a lone surrogate; JSON's ``\\ud800``
escape can, so these bodies are ASCII-escaped JSON written by hand.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.graphql import GraphQLClient

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"


def auth_headers(client: GraphQLClient, user: str | None, accept: str) -> dict[str, str]:
    headers = {"Accept": accept}
    if user is not None:
        headers["Authorization"] = f"Bearer {client.token(user)}"
    return headers


async def post_json(
    client: GraphQLClient,
    query: str,
    variables: dict[str, Any],
    *,
    user: str | None,
    accept: str = APPLICATION_JSON,
) -> httpx.Response:
    body = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
    headers = auth_headers(client, user, accept) | {"Content-Type": "application/json"}
    return await client.http.post("/graphql", content=body.encode("ascii"), headers=headers)


async def post_upload(
    client: GraphQLClient,
    query: str,
    variables: dict[str, Any],
    file_path: str,
    file_body: bytes,
    *,
    user: str | None,
    accept: str = APPLICATION_JSON,
) -> httpx.Response:
    """A GraphQL multipart request (the spec's `operations` + `map`) with one file."""
    operations = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
    return await client.http.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": [file_path]})},
        files={"0": ("upload.txt", file_body, "text/plain")},
        headers=auth_headers(client, user, accept),
    )


def error_codes(body: object) -> list[object]:
    """Every ``extensions.code`` in a GraphQL response body."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return [
        (error.get("extensions") or {}).get("code")
        for error in errors or []
        if isinstance(error, dict)
    ]
