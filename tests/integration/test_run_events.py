"""Run progress lives in Postgres: recorded once per event, read without Temporal, kept after
the deletes it records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from strawberry.relay import GlobalID

from heysh.config import Settings
from heysh.services import Services
from heysh.workflows.progress import RunProgress
from tests.support.documents import (
    DOCUMENT,
    active_domain,
    add_document,
    fixture_text,
    raw_id,
    ready_document,
    wait_document,
)
from tests.support.graphql import GraphQLClient, eventually, gateway
from tests.support.query_count import StatementCounter
from tests.support.store_state import domain_row

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

RUN = """query($id: ID!) { workflowRun(id: $id) {
  id kind status stage progress error startedAt finishedAt steps { name status done total } } }"""
DELETE_DOMAIN = """mutation($id: ID!) { deleteDomain(id: $id) {
  ... on DeleteDomainSuccess { run { id } } ... on UserError { code message } } }"""


async def test_a_runs_events_are_recorded_in_order_and_the_snapshot_ends_completed(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "rhea", "Recorded runs")
    document = await ready_document(api, "rhea", domain, "curie.md")
    run = document["lastRun"]
    events = await services.runs.events(raw_id(run["id"]), 0)

    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].message == "run started"
    assert (events[-1].status, events[-1].message) == ("COMPLETED", "run completed")
    assert {e.stage for e in events} >= {"chunk", "embed", "index", "extract", "resolve", "graph"}
    progress = [e.progress for e in events]
    assert progress == sorted(progress)  # never goes back
    assert (run["status"], run["stage"], run["progress"]) == ("COMPLETED", "done", 1.0)
    assert {s["status"] for s in run["steps"]} == {"DONE"}


async def test_recording_the_same_events_again_inserts_nothing(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "rhea", "Retried records")
    document = await ready_document(api, "rhea", domain, "einstein.md")
    run_id = raw_id(document["lastRun"]["id"])
    before = await services.runs.events(run_id, 0)

    # What a retried or replayed activity sends: the same events, from the same workflow state.
    progress = RunProgress.planned("PROCESS_DOCUMENT", ["chunk"], before[0].at.isoformat())
    assert await services.runs.record(run_id, progress, progress.events[:1]) == 0
    after = await services.runs.events(run_id, 0)
    assert after == before
    # An older snapshot never overwrites a newer one.
    read = (await api.data(RUN, {"id": document["lastRun"]["id"]}, user="rhea"))["workflowRun"]
    assert read["status"] == "COMPLETED"


@pytest.fixture
async def no_temporal_api(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """An api whose Temporal is a closed port: any run read that asked Temporal would fail."""
    closed = settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    async with gateway(closed) as client:
        yield client


async def test_runs_and_last_runs_are_read_without_any_temporal_call(
    api: GraphQLClient, no_temporal_api: GraphQLClient
) -> None:
    domain = await active_domain(api, "rhea", "No Temporal reads")
    document = await ready_document(api, "rhea", domain, "curie.md")
    read = await no_temporal_api.data(DOCUMENT, {"id": document["id"]}, user="rhea")
    assert read["document"]["lastRun"]["status"] == "COMPLETED"
    assert read["document"]["lastRun"] == document["lastRun"]
    run = await no_temporal_api.data(RUN, {"id": document["lastRun"]["id"]}, user="rhea")
    assert run["workflowRun"]["status"] == "COMPLETED"


@pytest.fixture
async def no_postgres_api(settings: Settings) -> AsyncIterator[GraphQLClient]:
    closed = settings.model_copy(
        update={"database_url": SecretStr("postgresql://postgres@127.0.0.1:9/postgres")}
    )
    async with gateway(closed) as client:
        yield client


async def test_a_run_read_with_postgres_down_is_store_unavailable_not_invented_state(
    no_postgres_api: GraphQLClient,
) -> None:
    run_id = str(GlobalID("WorkflowRun", f"process-document-{uuid.uuid4()}"))
    body = await no_postgres_api.execute(RUN, {"id": run_id}, user="rhea")
    assert body["data"] == {"workflowRun": None}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "STORE_UNAVAILABLE"


async def test_a_finished_delete_domain_run_stays_readable_as_completed(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "rhea", "Deleted with its runs kept")
    document = await ready_document(api, "rhea", domain, "curie.md")
    deleted = await api.data(DELETE_DOMAIN, {"id": domain}, user="rhea")
    run_id = deleted["deleteDomain"]["run"]["id"]

    async def gone() -> object:
        return await domain_row(services, uuid.UUID(raw_id(domain)))

    await eventually(gone, lambda row: row is None, within=120)
    run = (await api.data(RUN, {"id": run_id}, user="rhea"))["workflowRun"]
    assert (run["kind"], run["status"]) == ("DELETE_DOMAIN", "COMPLETED")
    assert run["finishedAt"] is not None
    # The document's own run is still there for whoever started it, and hidden from others.
    processed = await api.data(RUN, {"id": document["lastRun"]["id"]}, user="rhea")
    assert processed["workflowRun"]["status"] == "COMPLETED"
    stranger = await api.execute(RUN, {"id": run_id}, user="sly-stranger")
    assert stranger == {"data": {"workflowRun": None}}
    events = await services.runs.events(raw_id(run_id), 0)
    assert events[-1].status == "COMPLETED"


async def test_progress_moves_within_a_long_stage(api: GraphQLClient, services: Services) -> None:
    domain = await active_domain(api, "rhea", "Progress within stages")
    text = "\n\n".join(fixture_text("curie.md") for _ in range(30))
    added = await add_document(api, "rhea", domain, "long", text)
    document = await wait_document(api, "rhea", added["document"]["id"], within=300)
    assert document["status"] == "READY"
    events = await services.runs.events(raw_id(document["lastRun"]["id"]), 0)
    embed = [e.message for e in events if e.stage == "embed"]
    assert any(" of " in message for message in embed), embed
    assert len(embed) <= 12  # started, at most 9 tenths, done


PAGE_WITH_RUNS = """{ domains(first: 50) { edges { node { name lastRun { status }
  documents(first: 5) { edges { node { title lastRun { status stage } } } } } } } }"""


async def test_a_page_of_domains_and_documents_with_last_runs_needs_no_temporal(
    api: GraphQLClient, no_temporal_api: GraphQLClient
) -> None:
    domain = await active_domain(api, "rhea", "A page without Temporal")
    await ready_document(api, "rhea", domain, "einstein.md")
    page = await no_temporal_api.data(PAGE_WITH_RUNS, user="rhea")
    domains = [edge["node"] for edge in page["domains"]["edges"]]
    mine = next(d for d in domains if d["name"] == "A page without Temporal")
    assert mine["lastRun"]["status"] == "COMPLETED"
    (document,) = [edge["node"] for edge in mine["documents"]["edges"]]
    assert document["lastRun"] == {"status": "COMPLETED", "stage": "done"}


PAGE_WITHOUT_RUNS = """{ domains(first: 50) { edges { node { name
  documents(first: 5) { edges { node { title } } } } } } }"""
PAGE_WITH_DOCUMENT_RUNS = """{ domains(first: 50) { edges { node { name
  documents(first: 5) { edges { node { title ...Last } } } } } } }
fragment Last on Document { lastRun { status stage } }"""


async def test_documents_last_runs_come_with_their_page_in_the_same_statement(
    api: GraphQLClient, statements: StatementCounter
) -> None:
    domain = await active_domain(api, "rhea", "Runs with their page")
    document = await ready_document(api, "rhea", domain, "curie.md")
    with statements.counting() as without_runs:
        await api.data(PAGE_WITHOUT_RUNS, user="rhea")
    with statements.counting() as with_runs:
        page = await api.data(PAGE_WITH_DOCUMENT_RUNS, user="rhea")
    assert with_runs == without_runs
    mine = next(
        e["node"] for e in page["domains"]["edges"] if e["node"]["name"] == "Runs with their page"
    )
    (read,) = [e["node"] for e in mine["documents"]["edges"]]
    assert read["lastRun"] == {"status": "COMPLETED", "stage": "done"}
    assert document["lastRun"]["status"] == "COMPLETED"
