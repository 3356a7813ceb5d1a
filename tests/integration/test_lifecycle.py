"""The document and domain lifecycle under the second action: re-add, races, cancels, deletes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from heysh.config import Settings
from heysh.services import Services
from heysh.worker import build_document_activities, build_worker
from heysh.workflows.progress import RunOutput, RunStatus
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
from tests.support.embedders import HashEmbedder
from tests.support.graphql import GraphQLClient, eventually, gateway
from tests.support.store_state import (
    chunk_count,
    document_ids,
    domain_nodes,
    domain_row,
    relationship_weights,
)

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

RUN = "query($id: ID!) { workflowRun(id: $id) { id kind status error } }"
DOMAIN = "query($id: ID!) { domain(id: $id) { status error lastRun { id status } } }"
CREATE_DOMAIN = """
mutation($name: String!) { createDomain(input: {name: $name}) {
  ... on CreateDomainSuccess { domain { id status } run { id } } } }
"""
REBUILD = """
mutation($id: ID!) { rebuildGraph(domainId: $id) {
  __typename ... on UserError { code message } } }
"""
DELETE_DOMAIN = """
mutation($id: ID!) { deleteDomain(id: $id) {
  __typename ... on DeleteDomainSuccess { run { id } } ... on UserError { code message } } }
"""


@pytest.fixture
async def idle_queue(settings: Settings) -> AsyncIterator[tuple[GraphQLClient, str]]:
    """An api whose workflows wait on a queue that no worker polls until a test starts one."""
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    async with gateway(settings.model_copy(update={"task_queue": queue})) as client:
        yield client, queue


async def run_status(api: GraphQLClient, user: str, run_id: str) -> Any:
    return (await api.data(RUN, {"id": run_id}, user=user))["workflowRun"]


async def domain_state(api: GraphQLClient, user: str, domain: str) -> Any:
    return (await api.data(DOMAIN, {"id": domain}, user=user))["domain"]


def typenames(results: Sequence[dict[str, Any]], field: str) -> list[str]:
    return sorted(r[field]["__typename"] for r in results)


async def test_deleted_content_can_be_added_again_and_old_runs_stay_readable(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "rhea", "Re-add")
    first = await add_document(api, "rhea", domain, "curie", fixture_text("curie.md"))
    document_id = first["document"]["id"]
    before = await wait_document(api, "rhea", document_id)
    assert before["status"] == "READY"
    counts_before = await store_counts(services, domain)

    deleted = await api.data(DELETE, {"id": document_id}, user="rhea")
    delete_run = deleted["deleteDocument"]["run"]["id"]
    await eventually(
        lambda: api.data(DOCUMENT, {"id": document_id}, user="rhea"),
        lambda d: d["document"] is None,
    )

    again = await add_document(api, "rhea", domain, "curie", fixture_text("curie.md"))
    assert again["__typename"] == "AddDocumentSuccess", again
    assert again["created"] is True
    assert again["document"]["id"] == document_id  # the id still names the content
    assert again["run"]["id"] != first["run"]["id"]
    after = await wait_document(api, "rhea", document_id)
    assert after["status"] == "READY", after
    assert (after["chunkCount"], after["entityCount"], after["relationshipCount"]) == (
        before["chunkCount"],
        before["entityCount"],
        before["relationshipCount"],
    )
    assert await store_counts(services, domain) == counts_before
    for old in (first["run"]["id"], delete_run):
        run = await run_status(api, "rhea", old)
        assert run is not None
        assert run["status"] == "COMPLETED", run


async def test_concurrent_reprocess_calls_start_one_run_and_the_others_are_busy(
    api: GraphQLClient,
) -> None:
    domain = await active_domain(api, "rosa", "Races")
    document = await ready_document(api, "rosa", domain, "curie.md")

    results = await asyncio.gather(
        *(api.data(REPROCESS, {"id": document["id"]}, user="rosa") for _ in range(4))
    )
    assert (
        typenames(results, "reprocessDocument") == ["ReprocessDocumentSuccess"] + ["UserError"] * 3
    )
    assert {r["reprocessDocument"].get("code") for r in results} == {None, "BUSY"}
    assert (await wait_document(api, "rosa", document["id"]))["status"] == "READY"


async def test_concurrent_deletes_start_one_run_and_the_others_are_busy(
    api: GraphQLClient,
) -> None:
    domain = await active_domain(api, "rosa", "Delete races")
    document = await ready_document(api, "rosa", domain, "einstein.md")

    results = await asyncio.gather(
        *(api.data(DELETE, {"id": document["id"]}, user="rosa") for _ in range(4))
    )
    assert typenames(results, "deleteDocument") == ["DeleteDocumentSuccess"] + ["UserError"] * 3
    assert {r["deleteDocument"].get("code") for r in results} == {None, "BUSY"}
    busy = await api.data(REPROCESS, {"id": document["id"]}, user="rosa")
    assert busy["reprocessDocument"]["code"] in ("BUSY", "NOT_FOUND")
    await eventually(
        lambda: api.data(DOCUMENT, {"id": document["id"]}, user="rosa"),
        lambda d: d["document"] is None,
    )


async def test_concurrent_domain_deletes_start_one_run_and_the_others_are_busy(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "rosa", "Domain delete races")
    results = await asyncio.gather(
        *(api.data(DELETE_DOMAIN, {"id": domain}, user="rosa") for _ in range(3))
    )
    assert typenames(results, "deleteDomain") == ["DeleteDomainSuccess"] + ["UserError"] * 2
    assert {r["deleteDomain"].get("code") for r in results} == {None, "BUSY"}
    await eventually(lambda: domain_state(api, "rosa", domain), lambda d: d is None)
    assert await domain_row(services, uuid.UUID(raw_id(domain))) is None


async def test_adding_to_a_domain_being_deleted_is_refused_and_stores_nothing(
    api: GraphQLClient, services: Services, idle_queue: tuple[GraphQLClient, str]
) -> None:
    idle, _ = idle_queue
    domain = await active_domain(api, "dora", "Going away")
    deleting = await idle.data(DELETE_DOMAIN, {"id": domain}, user="dora")
    assert deleting["deleteDomain"]["__typename"] == "DeleteDomainSuccess"

    refused = await add_document(api, "dora", domain, "late", "Marie Curie lived in Paris.")
    assert (refused["__typename"], refused["code"]) == ("UserError", "INVALID_INPUT")
    assert await document_ids(services, uuid.UUID(raw_id(domain))) == []


async def test_editors_cancel_document_runs_and_only_owners_cancel_domain_runs(
    api: GraphQLClient, services: Services, idle_queue: tuple[GraphQLClient, str]
) -> None:
    idle, queue = idle_queue
    created = await api.data(CREATE_DOMAIN, {"name": "Permissions"}, user="owen")
    domain = created["createDomain"]["domain"]["id"]
    domain_run = created["createDomain"]["run"]["id"]
    await eventually(lambda: domain_state(api, "owen", domain), lambda d: d["status"] == "ACTIVE")
    await add_member(api, "owen", domain, "eddie-editor", "EDITOR")
    await add_member(api, "owen", domain, "vera-viewer", "VIEWER")

    added = await add_document(idle, "owen", domain, "queued", fixture_text("curie.md"))
    document_run = added["run"]["id"]

    by_viewer = await api.data(CANCEL, {"id": document_run}, user="vera-viewer")
    assert by_viewer["cancelWorkflowRun"]["code"] == "FORBIDDEN"
    by_editor_on_domain = await api.data(CANCEL, {"id": domain_run}, user="eddie-editor")
    assert by_editor_on_domain["cancelWorkflowRun"]["code"] == "FORBIDDEN"
    by_stranger = await api.data(CANCEL, {"id": document_run}, user="stan-stranger")
    assert by_stranger["cancelWorkflowRun"]["code"] == "NOT_FOUND"
    by_owner_on_finished = await api.data(CANCEL, {"id": domain_run}, user="owen")
    assert by_owner_on_finished["cancelWorkflowRun"]["code"] == "INVALID_INPUT"

    by_editor = await api.data(CANCEL, {"id": document_run}, user="eddie-editor")
    assert by_editor["cancelWorkflowRun"]["__typename"] == "CancelWorkflowRunSuccess"
    async with build_worker(services, task_queue=queue):
        document = await wait_document(api, "owen", added["document"]["id"])
    assert (document["status"], document["error"]) == ("FAILED", "canceled")
    assert document["lastRun"]["status"] == "CANCELED"


async def test_canceled_domain_creation_ends_failed_with_nothing_left_in_the_stores(
    services: Services, idle_queue: tuple[GraphQLClient, str]
) -> None:
    idle, queue = idle_queue
    created = await idle.data(CREATE_DOMAIN, {"name": "Never mind"}, user="cara")
    domain = created["createDomain"]["domain"]["id"]
    canceled = await idle.data(CANCEL, {"id": created["createDomain"]["run"]["id"]}, user="cara")
    assert canceled["cancelWorkflowRun"]["__typename"] == "CancelWorkflowRunSuccess"

    async with build_worker(services, task_queue=queue):
        state = await eventually(
            lambda: domain_state(idle, "cara", domain), lambda d: d["status"] != "CREATING"
        )
        run = await eventually(
            lambda: run_status(idle, "cara", created["createDomain"]["run"]["id"]),
            lambda r: r["status"] != "RUNNING",
        )
    assert (state["status"], state["error"]) == ("FAILED", "creation canceled")
    assert run["status"] == "CANCELED"
    assert await domain_nodes(services, raw_id(domain)) == 0
    assert not await services.vectors.tenant_exists(raw_id(domain))


async def test_canceled_document_deletion_ends_failed_and_can_be_deleted_again(
    api: GraphQLClient, services: Services, idle_queue: tuple[GraphQLClient, str]
) -> None:
    idle, queue = idle_queue
    domain = await active_domain(api, "dina", "Half deleted")
    document = await ready_document(api, "dina", domain, "curie.md")
    deleting = await idle.data(DELETE, {"id": document["id"]}, user="dina")
    run_id = deleting["deleteDocument"]["run"]["id"]
    assert (await idle.data(CANCEL, {"id": run_id}, user="dina"))["cancelWorkflowRun"][
        "__typename"
    ] == "CancelWorkflowRunSuccess"

    async with build_worker(services, task_queue=queue):
        failed = await wait_document(api, "dina", document["id"])
    assert failed["status"] == "FAILED"
    assert failed["error"].startswith("deletion canceled")
    assert (await run_status(api, "dina", run_id))["status"] == "CANCELED"

    again = await api.data(DELETE, {"id": document["id"]}, user="dina")
    assert again["deleteDocument"]["__typename"] == "DeleteDocumentSuccess"
    await eventually(
        lambda: api.data(DOCUMENT, {"id": document["id"]}, user="dina"),
        lambda d: d["document"] is None,
    )
    assert await store_counts(services, domain) == {
        "documents": 0,
        "chunks": 0,
        "entities": 0,
        "mentions": 0,
        "relationships": 0,
        "weight": 0,
        "vectors": 0,
    }


async def test_canceled_domain_deletion_ends_failed_and_can_be_deleted_again(
    api: GraphQLClient, services: Services, idle_queue: tuple[GraphQLClient, str]
) -> None:
    idle, queue = idle_queue
    domain = await active_domain(api, "dina", "Half deleted domain")
    deleting = await idle.data(DELETE_DOMAIN, {"id": domain}, user="dina")
    run_id = deleting["deleteDomain"]["run"]["id"]
    assert (await domain_state(api, "dina", domain))["status"] == "DELETING"
    assert (await idle.data(CANCEL, {"id": run_id}, user="dina"))["cancelWorkflowRun"][
        "__typename"
    ] == "CancelWorkflowRunSuccess"

    async with build_worker(services, task_queue=queue):
        state = await eventually(
            lambda: domain_state(api, "dina", domain), lambda d: d["status"] != "DELETING"
        )
    assert state["status"] == "FAILED"
    assert state["error"].startswith("deletion canceled")

    again = await api.data(DELETE_DOMAIN, {"id": domain}, user="dina")
    assert again["deleteDomain"]["__typename"] == "DeleteDomainSuccess"
    await eventually(lambda: domain_state(api, "dina", domain), lambda d: d is None)


async def test_delete_domain_stops_a_running_ingestion_before_it_purges(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "tess", "Busy domain")
    text = "\n\n".join([fixture_text("curie.md")] * 60)  # long enough to catch mid-run
    added = await add_document(api, "tess", domain, "long", text)

    async def stage() -> Any:
        document = await api.data(DOCUMENT, {"id": added["document"]["id"]}, user="tess")
        return document["document"]["lastRun"]["stage"]

    await eventually(stage, lambda s: s in ("embed", "index", "extract"))
    deleting = await api.data(DELETE_DOMAIN, {"id": domain}, user="tess")
    delete_run = deleting["deleteDomain"]["run"]["id"]
    await eventually(lambda: domain_state(api, "tess", domain), lambda d: d is None, within=120)

    processing = services.temporal.get_workflow_handle(
        raw_id(added["run"]["id"]), result_type=RunOutput
    )
    assert (await processing.result()).status is RunStatus.CANCELED
    deleted = await services.temporal.get_workflow_handle(
        raw_id(delete_run), result_type=RunOutput
    ).result()
    assert deleted.status is RunStatus.COMPLETED
    messages = [event.message for event in deleted.progress.events]
    assert "1 other run(s) stopped" in messages
    await asyncio.sleep(1)  # nothing may trickle in after the delete
    raw = raw_id(domain)
    counts = await services.graph.domain_counts(raw)
    assert (counts.documents, counts.chunks, counts.entities) == (0, 0, 0)
    assert not await services.vectors.tenant_exists(raw)


async def test_a_batch_failing_for_good_stops_its_siblings_and_leaves_nothing_behind(
    settings: Settings, services: Services
) -> None:
    queue = f"poison-{uuid.uuid4().hex[:8]}"
    own = settings.model_copy(update={"task_queue": queue, "index_batch_size": 1})
    parts = [fixture_text("curie.md")] * 8
    parts.insert(4, "POISON. This paragraph cannot be indexed.")
    activities = build_document_activities(services, embedder=HashEmbedder(poison="POISON"))
    async with (
        gateway(own) as api,
        build_worker(services, task_queue=queue, documents=activities),
    ):
        domain = await active_domain(api, "pia", "Poisoned")
        added = await add_document(api, "pia", domain, "poisoned", "\n\n".join(parts))
        document = await wait_document(api, "pia", added["document"]["id"])
    assert document["status"] == "FAILED"
    assert "index step failed" in document["error"]

    history = services.temporal.get_workflow_handle(raw_id(added["run"]["id"]))
    scheduled: dict[int, str] = {}
    failed_at: int | None = None
    late: list[int] = []
    async for event in history.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
            if failed_at is not None and name == "index_chunks":
                late.append(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED and failed_at is None:
            failed = event.activity_task_failed_event_attributes.scheduled_event_id
            if scheduled.get(failed) == "index_chunks":
                failed_at = event.event_id
    assert failed_at is not None
    assert late == [], "index batches started after a sibling had failed for good"
    assert sum(name == "index_chunks" for name in scheduled.values()) >= 2

    document_id = raw_id(added["document"]["id"])
    assert await services.vectors.count_document(raw_id(domain), document_id) == 0
    counts = await store_counts(services, domain)
    assert (counts["chunks"], counts["mentions"], counts["entities"]) == (0, 0, 0)
    assert await chunk_count(services, uuid.UUID(document_id)) == 0


async def test_graph_writes_for_chunks_that_are_gone_create_no_entity(services: Services) -> None:
    domain_id = str(uuid.uuid4())
    await services.graph.merge_domain(domain_id, "ghosts")
    await services.graph.merge_entities(
        domain_id,
        [
            {
                "id": str(uuid.uuid4()),
                "name": "Ghost",
                "type": "PERSON",
                "description": None,
                "chunk_ids": [str(uuid.uuid4())],
            }
        ],
    )
    assert (await services.graph.domain_counts(domain_id)).entities == 0
    await services.graph.delete_domain(domain_id)


async def test_deleting_a_near_copy_weakens_exactly_what_the_dry_run_said(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "wes", "Weights")
    raw = raw_id(domain)
    await ready_document(api, "wes", domain, "curie.md")
    alone = await relationship_weights(services, raw)
    counts_alone = await store_counts(services, domain)

    copy = fixture_text("curie.md") + "\n\nThis copy has one more line, about Warsaw."
    added = await add_document(api, "wes", domain, "copy", copy)
    assert (await wait_document(api, "wes", added["document"]["id"]))["status"] == "READY"
    both = await relationship_weights(services, raw)
    assert all(both[rid] >= weight for rid, weight in alone.items())
    assert sum(both.values()) > sum(alone.values())

    dry = await api.data(DELETE, {"id": added["document"]["id"], "dryRun": True}, user="wes")
    impact = dry["deleteDocument"]["impact"]
    assert impact["relationshipsWeakened"] > 0
    await api.data(DELETE, {"id": added["document"]["id"]}, user="wes")
    await eventually(
        lambda: api.data(DOCUMENT, {"id": added["document"]["id"]}, user="wes"),
        lambda d: d["document"] is None,
    )
    after = await relationship_weights(services, raw)
    weakened = sum(1 for rid, weight in after.items() if weight < both[rid])
    deleted = sum(1 for rid in both if rid not in after)
    assert (weakened, deleted) == (
        impact["relationshipsWeakened"],
        impact["relationshipsDeleted"],
    )
    assert after == alone  # withdrawing the copy restores the weights exactly
    assert await store_counts(services, domain) == counts_alone


async def test_a_workflow_service_outage_leaves_nothing_stuck(
    api: GraphQLClient, services: Services, settings: Settings
) -> None:
    domain = await active_domain(api, "otto", "Outage")
    document = await ready_document(api, "otto", domain, "einstein.md")
    closed = settings.model_copy(update={"temporal_address": "127.0.0.1:9"})  # nothing listens
    async with gateway(closed) as down:
        for mutation, variables in (
            (DELETE, {"id": document["id"]}),
            (REBUILD, {"id": domain}),
            (DELETE_DOMAIN, {"id": domain}),
        ):
            body = await down.execute(mutation, variables, user="otto")
            assert body["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE", body
    after = (await api.data(DOCUMENT, {"id": document["id"]}, user="otto"))["document"]
    assert after["status"] == "FAILED"
    assert "delete it again" in after["error"]
    state = await domain_state(api, "otto", domain)
    assert state["status"] == "FAILED"
    assert "delete the domain again" in state["error"]
