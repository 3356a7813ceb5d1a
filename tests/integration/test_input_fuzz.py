"""Property-based fuzzing of every argument and input field of every query and mutation.

The targets are read from the schema itself (graphql-core's view of `build_schema()`), so a new
field or argument is fuzzed without touching this file. For each target, Hypothesis sends hostile
values (text with NULs, control characters and lone surrogates, base64 junk, global ids of every
node type with random, malformed and real node ids, cursors, huge and negative numbers, floats,
wrong JSON types, files of arbitrary bytes) while every other argument gets a plausible value,
real ids of the fuzzing user's own objects included, so validation deeper than the first check is
reached. Values go as variables (JSON or a multipart upload) or inline as literals, under either
response media type, through the real gateway against the real stores. A fixed sweep sends the
bug classes found so far to every target as well. The machinery is in tests/support/fuzz_*.py.

The property: no answer is a 5xx, every answer is a JSON GraphQL body, and no error is
INTERNAL_SERVER_ERROR (or STORE_UNAVAILABLE: every store is up).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.support.documents import active_domain, add_document, wait_document
from tests.support.fuzz_requests import (
    Target,
    assert_handled,
    requests,
    send,
    sweep,
    targets,
)
from tests.support.fuzz_values import SCHEMA, RealIds
from tests.support.graphql import GraphQLClient, eventually

pytestmark = pytest.mark.integration

USER = "fuzz-felix"

DOMAINS = "query { domains(first: 100) { edges { cursor node { id status } } } }"
RUN_OF = """query($id: ID!) { node(id: $id) {
  ... on Domain { lastRun { id } } ... on Document { lastRun { id } } } }"""
SAMPLE = "Rosalind Franklin studied DNA in London with Maurice Wilkins."


@pytest.fixture
async def real_ids(api: GraphQLClient) -> RealIds:
    """The fuzzing user's own domain, document, their runs and cursors, made afresh when an
    earlier target's mutations (deleteDomain, deleteDocument) consumed them.

    Per test item, not per example: the examples of one target share these objects.
    """
    edges = (await api.data(DOMAINS, user=USER))["domains"]["edges"]
    active = [edge["node"]["id"] for edge in edges if edge["node"]["status"] == "ACTIVE"]
    domain = active[0] if active else await active_domain(api, USER, "Fuzzing")

    async def add() -> dict[str, Any]:
        return await add_document(api, USER, domain, "fuzz", SAMPLE)

    # BUSY while an earlier target's deleteDocument of the same content is still running.
    added = await eventually(add, lambda a: a["__typename"] == "AddDocumentSuccess")
    document = added["document"]["id"]
    if added["created"]:
        await wait_document(api, USER, document)
    runs = []
    for node in (domain, document):
        found = await api.data(RUN_OF, {"id": node}, user=USER)
        if found["node"] and found["node"]["lastRun"]:
            runs.append(found["node"]["lastRun"]["id"])
    edges = (await api.data(DOMAINS, user=USER))["domains"]["edges"]
    return RealIds(
        by_type={"Domain": [domain], "Document": [document], "WorkflowRun": runs},
        cursors=[edge["cursor"] for edge in edges],
    )


@pytest.mark.parametrize("target", targets(), ids=str)
@settings(
    max_examples=20,
    deadline=None,
    database=None,  # nothing written into the checkout; a failure prints its example
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # real_ids is meant to be shared by the examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_no_argument_value_causes_a_server_error(
    api: GraphQLClient, real_ids: RealIds, target: Target, data: st.DataObject
) -> None:
    request = data.draw(requests(target, real_ids), label="request")
    query, variables, files = request.build()
    note(f"accept={request.accept!r} files={ {k: len(v) for k, v in files.items()} }")
    note(f"query={query}")
    note(f"variables={json.dumps(variables, ensure_ascii=True)[:2000]}")
    assert_handled(await send(api, request, USER))


@pytest.mark.parametrize("target", targets(), ids=str)
async def test_known_hostile_values_cause_no_server_error(
    api: GraphQLClient, real_ids: RealIds, target: Target
) -> None:
    """NULs, lone surrogates, control characters, overflowing numbers and wrong JSON types, each
    sent once to every target: the bug classes fuzzing found, kept as a deterministic sweep."""
    failures = []
    for request in sweep(target, real_ids):
        response = await send(api, request, USER)
        try:
            assert_handled(response)
        except AssertionError as exc:
            failures.append(f"{request.build()[1]!r:.300}: {exc!s:.500}")
    assert not failures, "\n".join(failures)


def test_every_root_field_argument_and_input_field_is_a_target() -> None:
    """The derivation itself: the schema's arguments and nested input fields are all found."""
    found = {str(t) for t in targets()}
    assert "mutation.addDocument(input.title)" in found
    assert "mutation.addDocument(input.file)" in found
    assert "query.domains(after)" in found
    for root in (SCHEMA.query_type, SCHEMA.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            for arg in field.args:
                assert any(t.field == name and t.path[0] == arg for t in targets())
