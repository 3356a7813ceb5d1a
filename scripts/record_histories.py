"""Record the event histories of real runs of every workflow, for the replay test.

    .venv/bin/python scripts/record_histories.py [--suffix _run_events]

Starts a throwaway local stack, drives the real api and worker through each workflow's paths
(success, failure, cancel), and writes each history to tests/fixtures/histories/<name>.json.
tests/unit/test_replay.py replays them against the current workflow code: a change that would
break runs already in flight fails there until it is made with `workflow.patched`.
Re-record only when a change is deliberately incompatible (and old runs have drained). After a
patched change, record with a --suffix to add histories of the new path beside the old ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heysh.config import Settings  # noqa: E402
from heysh.local.stack import LocalStack  # noqa: E402
from heysh.services import Services, open_services  # noqa: E402
from heysh.stores.migrations import apply_migrations  # noqa: E402
from heysh.worker import build_worker, prepare_stores  # noqa: E402
from tests.support.documents import (  # noqa: E402
    CANCEL,
    DELETE,
    DOCUMENT,
    REPROCESS,
    add_document,
    fixture_text,
    raw_id,
    wait_document,
)
from tests.support.graphql import GraphQLClient, eventually, gateway  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "histories"
SUFFIX = ""
CREATE_DOMAIN = """
mutation($name: String!) { createDomain(input: {name: $name}) {
  ... on CreateDomainSuccess { domain { id } run { id } } } }
"""
DELETE_DOMAIN = (
    "mutation($id: ID!) { deleteDomain(id: $id) { ... on DeleteDomainSuccess { run { id } } } }"
)
REBUILD = """
mutation($id: ID!) { rebuildGraph(domainId: $id) { ... on RebuildGraphSuccess { run { id } } } }
"""
RUN = "query($id: ID!) { workflowRun(id: $id) { status } }"


async def save(services: Services, name: str, run_gid: str) -> None:
    handle = services.temporal.get_workflow_handle(raw_id(run_gid))
    await handle.result()
    history = await handle.fetch_history()
    (OUT / f"{name}{SUFFIX}.json").write_text(
        json.dumps(json.loads(history.to_json()), indent=1) + "\n"
    )
    print(f"recorded {name}{SUFFIX}: {len(history.events)} events", flush=True)


async def finished(api: GraphQLClient, run_gid: str) -> Any:
    return await eventually(
        lambda: api.data(RUN, {"id": run_gid}, user="rec"),
        lambda r: r["workflowRun"] is None or r["workflowRun"]["status"] != "RUNNING",
        within=300,
    )


async def record(settings: Settings, services: Services) -> None:
    async with gateway(settings) as api, build_worker(services):
        created = await api.data(CREATE_DOMAIN, {"name": "Histories"}, user="rec")
        domain = created["createDomain"]["domain"]["id"]
        await save(services, "create_domain", created["createDomain"]["run"]["id"])
        await eventually(
            lambda: api.data(
                "query($id: ID!) { domain(id: $id) { status } }", {"id": domain}, user="rec"
            ),
            lambda d: d["domain"]["status"] == "ACTIVE",
        )
        added = await add_document(api, "rec", domain, "curie", fixture_text("curie.md"))
        await wait_document(api, "rec", added["document"]["id"])
        await save(services, "process_document", added["run"]["id"])

        again = await api.data(REPROCESS, {"id": added["document"]["id"]}, user="rec")
        await wait_document(api, "rec", added["document"]["id"])
        await save(services, "process_document_reprocess", again["reprocessDocument"]["run"]["id"])

        other = await add_document(api, "rec", domain, "einstein", fixture_text("einstein.md"))
        await wait_document(api, "rec", other["document"]["id"])
        rebuilt = await api.data(REBUILD, {"id": domain}, user="rec")
        await finished(api, rebuilt["rebuildGraph"]["run"]["id"])
        await save(services, "rebuild_graph", rebuilt["rebuildGraph"]["run"]["id"])

        deleted = await api.data(DELETE, {"id": other["document"]["id"]}, user="rec")
        await save(services, "delete_document", deleted["deleteDocument"]["run"]["id"])

        long = "\n\n".join([fixture_text("curie.md")] * 60)
        busy = await add_document(api, "rec", domain, "long", long)

        async def stage() -> Any:
            document = await api.data(DOCUMENT, {"id": busy["document"]["id"]}, user="rec")
            return document["document"]["lastRun"]["stage"]

        await eventually(stage, lambda s: s in ("embed", "index", "extract"))
        await api.data(CANCEL, {"id": busy["run"]["id"]}, user="rec")
        await wait_document(api, "rec", busy["document"]["id"])
        await save(services, "process_document_canceled", busy["run"]["id"])

        again_long = await api.data(REPROCESS, {"id": busy["document"]["id"]}, user="rec")
        await eventually(stage, lambda s: s in ("embed", "index", "extract"))
        gone = await api.data(DELETE_DOMAIN, {"id": domain}, user="rec")
        await save(
            services,
            "process_document_stopped_by_domain_delete",
            again_long["reprocessDocument"]["run"]["id"],
        )
        await save(services, "delete_domain_stopping_a_run", gone["deleteDomain"]["run"]["id"])

    idle = settings.model_copy(update={"task_queue": f"idle-{uuid.uuid4().hex[:8]}"})
    async with gateway(idle) as api:
        created = await api.data(CREATE_DOMAIN, {"name": "Canceled"}, user="rec")
        await api.data(CANCEL, {"id": created["createDomain"]["run"]["id"]}, user="rec")
        async with build_worker(services, task_queue=idle.task_queue):
            await save(services, "create_domain_canceled", created["createDomain"]["run"]["id"])


async def main() -> None:
    global SUFFIX
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suffix", default="", help="appended to each history's file name")
    SUFFIX = parser.parse_args().suffix
    OUT.mkdir(parents=True, exist_ok=True)
    stack = LocalStack.for_tests(Path(tempfile.mkdtemp(prefix="heysh-histories-")))
    stack.start()
    try:
        env = stack.settings_env()
        apply_migrations(env["HEYSH_DATABASE_URL"])
        settings = stack.test_settings(
            supabase_jwt_secret=secrets.token_urlsafe(32),
            task_queue=f"histories-{uuid.uuid4().hex[:8]}",
        )
        async with open_services(settings) as services:
            await prepare_stores(services)
            await record(settings, services)
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
