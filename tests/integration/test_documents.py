"""Document ingestion end to end, against the real Temporal, Postgres, Neo4j and Weaviate."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import psycopg
import pytest

from heysh.services import Services
from tests.support.documents import (
    CANCEL,
    DELETE,
    DOCUMENT,
    REPROCESS,
    active_domain,
    add_document,
    add_member,
    fixture_text,
    raw_id,
    ready_document,
    store_counts,
    wait_document,
)
from tests.support.graphql import GraphQLClient, eventually, gateway

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]


async def test_document_becomes_ready_with_matching_chunks_vectors_and_graph(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Physics history")
    document = await ready_document(api, "ada", domain, "curie.md")

    assert document["chunkCount"] >= 2
    assert document["entityCount"] >= 10
    assert document["relationshipCount"] >= 10
    run = document["lastRun"]
    assert run["status"] == "COMPLETED"
    assert run["progress"] == 1.0
    assert [s["name"] for s in run["steps"]] == [
        "chunk",
        "embed",
        "index",
        "extract",
        "resolve",
        "graph",
    ]
    assert all(s["status"] == "DONE" for s in run["steps"])
    counts = await store_counts(services, domain)
    doc_id = raw_id(document["id"])
    assert counts["vectors"] == counts["chunks"] == document["chunkCount"]
    assert await services.vectors.count_document(raw_id(domain), doc_id) == document["chunkCount"]
    assert counts["entities"] == document["entityCount"]
    assert counts["relationships"] == document["relationshipCount"]


async def test_same_entity_in_two_documents_is_one_node_linked_to_both(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Shared entities")
    curie = await ready_document(api, "ada", domain, "curie.md")
    einstein = await ready_document(api, "ada", domain, "einstein.md")

    linked = await services.graph.entity_documents(raw_id(domain), "Marie Curie")
    assert len(linked) == 1, linked
    (documents,) = linked.values()
    assert documents == sorted([raw_id(curie["id"]), raw_id(einstein["id"])])


async def test_adding_the_same_content_twice_yields_one_document_and_one_run(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Dedup")
    text = fixture_text("einstein.md")
    first = await add_document(api, "ada", domain, "first", text)
    second = await add_document(api, "ada", domain, "second title, same content", text)
    assert first["created"] is True
    assert second["created"] is False
    assert second["document"]["id"] == first["document"]["id"]
    assert second["run"]["id"] == first["run"]["id"]
    await wait_document(api, "ada", first["document"]["id"])
    async with await psycopg.AsyncConnection.connect(
        services.settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute(
            "select count(*) from heysh.workflow_runs where subject_id = %s",
            (uuid.UUID(raw_id(first["document"]["id"])),),
        )
        assert await cur.fetchone() == (1,)


async def test_reprocess_leaves_exactly_the_state_of_a_first_run(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Reprocess")
    await ready_document(api, "ada", domain, "einstein.md")
    document = await ready_document(api, "ada", domain, "curie.md")
    before = await store_counts(services, domain)

    result = await api.data(REPROCESS, {"id": document["id"]}, user="ada")
    assert result["reprocessDocument"]["__typename"] == "ReprocessDocumentSuccess"
    run_id = result["reprocessDocument"]["run"]["id"]

    async def latest() -> Any:
        return (await api.data(DOCUMENT, {"id": document["id"]}, user="ada"))["document"]

    again = await eventually(
        latest, lambda d: d["lastRun"]["id"] == run_id and d["status"] in ("READY", "FAILED")
    )
    assert again["status"] == "READY"
    assert await store_counts(services, domain) == before


async def test_delete_dry_run_changes_nothing_and_predicts_the_real_delete(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Deletion")
    keep = await ready_document(api, "ada", domain, "einstein.md")
    doomed = await ready_document(api, "ada", domain, "curie.md")
    before = await store_counts(services, domain)

    dry = (await api.data(DELETE, {"id": doomed["id"], "dryRun": True}, user="ada"))[
        "deleteDocument"
    ]
    assert dry["dryRun"] is True
    assert dry["run"] is None
    impact = dry["impact"]
    assert impact["chunks"] == doomed["chunkCount"]
    assert impact["vectors"] == doomed["chunkCount"]
    assert impact["entitiesDeleted"] > 0
    assert "Pierre Curie" in impact["entityNames"]
    assert "Marie Curie" not in impact["entityNames"]  # Einstein's document mentions her too
    assert await store_counts(services, domain) == before

    real = (await api.data(DELETE, {"id": doomed["id"]}, user="ada"))["deleteDocument"]
    assert real["run"] is not None

    async def gone() -> Any:
        return (await api.data(DOCUMENT, {"id": doomed["id"]}, user="ada"))["document"]

    await eventually(gone, lambda d: d is None)
    after = await store_counts(services, domain)
    assert before["chunks"] - after["chunks"] == impact["chunks"]
    assert before["vectors"] - after["vectors"] == impact["vectors"]
    assert before["entities"] - after["entities"] == impact["entitiesDeleted"]
    assert before["relationships"] - after["relationships"] == impact["relationshipsDeleted"]
    assert after["documents"] == 1

    doomed_id = raw_id(doomed["id"])
    assert await services.vectors.count_document(raw_id(domain), doomed_id) == 0
    assert await services.graph.count_document_chunks(doomed_id) == 0
    keep_id = raw_id(keep["id"])
    assert await services.graph.count_document_chunks(keep_id) == keep["chunkCount"]
    assert await services.vectors.count_document(raw_id(domain), keep_id) == keep["chunkCount"]
    # No orphan entity survives: every remaining entity is mentioned by the kept document.
    assert after["entities"] == keep["entityCount"]


async def test_invalid_content_gets_typed_errors_and_stores_nothing(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Validation")
    empty = await add_document(api, "ada", domain, "empty", "  \n\t ")
    assert (empty["__typename"], empty["code"]) == ("UserError", "CONTENT_EMPTY")

    small = api.settings.model_copy(update={"max_document_bytes": 1000})
    async with gateway(small) as client:
        big = await add_document(client, "ada", domain, "big", "x" * 1001)
        assert (big["__typename"], big["code"]) == ("UserError", "CONTENT_TOO_LARGE")
        for body, code in (
            (b"\xff\xfe not utf-8", "CONTENT_NOT_UTF8"),
            (b"y" * 5000, "CONTENT_TOO_LARGE"),
        ):
            upload = await upload_file(client, "ada", domain, body)
            assert upload["data"]["addDocument"]["code"] == code, upload
        ok = await upload_file(client, "ada", domain, b"Grace Hopper wrote COBOL.")
        assert ok["data"]["addDocument"]["__typename"] == "AddDocumentSuccess", ok

    async with await psycopg.AsyncConnection.connect(
        services.settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute(
            "select count(*) from heysh.documents where domain_id = %s",
            (uuid.UUID(raw_id(domain)),),
        )
        assert await cur.fetchone() == (1,)


async def upload_file(client: GraphQLClient, user: str, domain: str, body: bytes) -> dict[str, Any]:
    operations = {
        "query": """mutation($input: AddDocumentInput!) { addDocument(input: $input) {
          __typename ... on UserError { code message } ... on AddDocumentSuccess { created } } }""",
        "variables": {"input": {"domainId": domain, "title": "upload", "file": None}},
    }
    response = await client.http.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("notes.txt", body, "text/plain")},
        headers={"Authorization": f"Bearer {client.token(user)}"},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_viewers_cannot_add_and_non_members_learn_nothing(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Roles")
    await add_member(api, "ada", domain, "victor-viewer", "VIEWER")
    viewer = await add_document(api, "victor-viewer", domain, "t", "Some text about Paris.")
    assert (viewer["__typename"], viewer["code"]) == ("UserError", "FORBIDDEN")
    stranger = await add_document(api, "stan-stranger", domain, "t", "Some text about Paris.")
    unknown_domain = "RG9tYWluOjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMA=="
    unknown = await add_document(api, "stan-stranger", unknown_domain, "t", "Some text.")
    assert stranger == unknown
    assert stranger["code"] == "NOT_FOUND"


async def test_cancel_withdraws_everything_and_marks_the_document_failed(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "ada", "Cancel")
    text = "\n\n".join([fixture_text("curie.md")] * 60)  # long enough to catch mid-run
    added = await add_document(api, "ada", domain, "long", text)
    document_id = added["document"]["id"]

    async def stage() -> Any:
        document = (await api.data(DOCUMENT, {"id": document_id}, user="ada"))["document"]
        return document["lastRun"]["stage"]

    await eventually(stage, lambda s: s in ("embed", "index", "extract"))
    canceled = await api.data(CANCEL, {"id": added["run"]["id"]}, user="ada")
    assert canceled["cancelWorkflowRun"]["__typename"] == "CancelWorkflowRunSuccess"

    document = await wait_document(api, "ada", document_id)
    assert document["status"] == "FAILED"
    assert document["error"] == "canceled"
    assert document["lastRun"]["status"] == "CANCELED"
    await asyncio.sleep(1)  # nothing may trickle in after the run ended
    assert await services.vectors.count_document(raw_id(domain), raw_id(document_id)) == 0
    counts = await store_counts(services, domain)
    assert counts["chunks"] == counts["entities"] == counts["relationships"] == 0
