"""rebuildGraph: re-resolve a domain across its documents and rewrite the graph, idempotently."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest

from heysh.config import Settings
from heysh.pipeline.resolution import normalize_name
from heysh.services import Services
from heysh.worker import build_worker
from tests.support.documents import (
    DELETE,
    DOCUMENT,
    REPROCESS,
    active_domain,
    add_document,
    raw_id,
    ready_document,
    store_counts,
)
from tests.support.graphql import GraphQLClient, eventually, gateway
from tests.support.store_state import entity_keys, relationship_weights

pytestmark = pytest.mark.integration

REBUILD = """
mutation($id: ID!) { rebuildGraph(domainId: $id) {
  __typename ... on RebuildGraphSuccess { run { id } } ... on UserError { code message } } }
"""
RUN = "query($id: ID!) { workflowRun(id: $id) { status kind progress steps { name status } } }"
DOMAIN = "query($id: ID!) { domain(id: $id) { status error } }"


async def rebuild(api: GraphQLClient, user: str, domain: str) -> dict[str, Any]:
    started = (await api.data(REBUILD, {"id": domain}, user=user))["rebuildGraph"]
    assert started["__typename"] == "RebuildGraphSuccess", started
    run: dict[str, Any] = await eventually(
        lambda: api.data(RUN, {"id": started["run"]["id"]}, user=user),
        lambda r: r["workflowRun"]["status"] != "RUNNING",
        within=180,
    )
    return run["workflowRun"]


async def duplicate_keys(services: Services, domain: str) -> list[tuple[str, str]]:
    keys = Counter(
        (normalize_name(name), type_)
        for _, name, type_ in await entity_keys(services, raw_id(domain))
    )
    return [key for key, n in keys.items() if n > 1]


async def test_rebuild_rewrites_the_same_graph_twice_with_no_duplicate_entity(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "rob", "Rebuild")
    curie = await ready_document(api, "rob", domain, "curie.md")
    await ready_document(api, "rob", domain, "einstein.md")
    before = await store_counts(services, domain)

    first = await rebuild(api, "rob", domain)
    assert first["status"] == "COMPLETED", first
    assert first["kind"] == "REBUILD_GRAPH"
    assert [s["status"] for s in first["steps"]] == ["DONE"] * 4
    assert (await api.data(DOMAIN, {"id": domain}, user="rob"))["domain"] == {
        "status": "ACTIVE",
        "error": None,
    }
    once = await store_counts(services, domain)
    weights_once = await relationship_weights(services, raw_id(domain))
    for unchanged in ("documents", "chunks", "vectors"):
        assert once[unchanged] == before[unchanged]
    assert 0 < once["entities"] <= before["entities"]
    assert await duplicate_keys(services, domain) == []

    second = await rebuild(api, "rob", domain)
    assert second["status"] == "COMPLETED"
    assert await store_counts(services, domain) == once
    assert await relationship_weights(services, raw_id(domain)) == weights_once

    # The rewritten journal still withdraws exactly what each document contributed.
    await api.data(DELETE, {"id": curie["id"]}, user="rob")
    await eventually(
        lambda: api.data(DOCUMENT, {"id": curie["id"]}, user="rob"),
        lambda d: d["document"] is None,
    )
    assert await duplicate_keys(services, domain) == []
    left = await store_counts(services, domain)
    assert left["documents"] == 1
    assert 0 < left["entities"] < once["entities"]


async def test_rebuild_is_for_owners_refuses_a_second_one_and_blocks_changes_while_it_runs(
    api: GraphQLClient, services: Services, settings: Settings
) -> None:
    domain = await active_domain(api, "rob", "Rebuild races")
    document = await ready_document(api, "rob", domain, "einstein.md")
    queue = f"rebuild-{uuid.uuid4().hex[:8]}"
    async with gateway(settings.model_copy(update={"task_queue": queue})) as idle:
        stranger = await idle.data(REBUILD, {"id": domain}, user="stan-stranger")
        assert stranger["rebuildGraph"]["code"] == "NOT_FOUND"
        results = await asyncio.gather(
            *(idle.data(REBUILD, {"id": domain}, user="rob") for _ in range(3))
        )
        kinds = sorted(r["rebuildGraph"]["__typename"] for r in results)
        assert kinds == ["RebuildGraphSuccess", "UserError", "UserError"]
        assert {r["rebuildGraph"].get("code") for r in results} == {None, "BUSY"}
        (run_id,) = [
            r["rebuildGraph"]["run"]["id"]
            for r in results
            if r["rebuildGraph"]["__typename"] == "RebuildGraphSuccess"
        ]
        # No worker polls the queue yet: the domain is held REBUILDING.
        state = (await api.data(DOMAIN, {"id": domain}, user="rob"))["domain"]
        assert state["status"] == "REBUILDING"
        refused = await add_document(api, "rob", domain, "late", "Marie Curie lived in Paris.")
        assert refused["code"] == "BUSY"
        reprocess = await api.data(REPROCESS, {"id": document["id"]}, user="rob")
        assert reprocess["reprocessDocument"]["code"] == "BUSY"

        async with build_worker(services, task_queue=queue):
            run = await eventually(
                lambda: api.data(RUN, {"id": run_id}, user="rob"),
                lambda r: r["workflowRun"]["status"] != "RUNNING",
            )
    assert run["workflowRun"]["status"] == "COMPLETED"
    assert (await api.data(DOMAIN, {"id": domain}, user="rob"))["domain"]["status"] == "ACTIVE"
