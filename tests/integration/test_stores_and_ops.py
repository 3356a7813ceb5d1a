"""Store-level guarantees: idempotent activities, compensation, RLS, readiness, schema file."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from temporalio.worker import Worker

from heysh.activities.domains import DomainActivities, DomainRef, DomainStatusChange
from heysh.activities.runs import RunActivities
from heysh.config import Settings
from heysh.local.install import ensure_temporal
from heysh.local.services import TemporalService
from heysh.local.stack import free_test_ports
from heysh.services import Services
from heysh.stores.postgres import DomainStatus
from heysh.stores.vectors import VectorStore
from heysh.workflows.create_domain import CreateDomainInput, CreateDomainWorkflow, workflow_id
from heysh.workflows.progress import RunOutput, RunStatus
from tests.support.graphql import gateway
from tests.support.store_state import domain_nodes, domain_row

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def new_domain_row(services: Services, name: str) -> uuid.UUID:
    domain_id, owner = uuid.uuid4(), uuid.uuid4()
    await services.postgres.create_domain(domain_id, name, "", owner, workflow_id(str(domain_id)))
    return domain_id


async def test_domain_activities_run_twice_leave_exactly_one_of_each(services: Services) -> None:
    domain_id = await new_domain_row(services, "twice")
    activities = DomainActivities(
        services.postgres, services.graph, services.vectors, services.temporal
    )
    ref = DomainRef(str(domain_id), "twice")
    for _ in range(2):
        await activities.create_graph_domain(ref)
        await activities.create_vector_tenant(ref)
        await activities.set_domain_status(DomainStatusChange(str(domain_id), "ACTIVE"))

    assert await domain_nodes(services, str(domain_id)) == 1
    assert await services.vectors.tenant_exists(str(domain_id))
    row = await domain_row(services, domain_id)
    assert row is not None
    assert row.status is DomainStatus.ACTIVE
    async with await psycopg.AsyncConnection.connect(
        services.settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute("select count(*) from heysh.domains where id = %s", (domain_id,))
        assert (await cur.fetchone()) == (1,)


async def test_failed_creation_compensates_and_marks_the_domain_failed(
    services: Services,
) -> None:
    # A worker whose collection is not multi-tenant: Weaviate refuses the tenant (a 4xx).
    broken_collection = f"NotMultiTenant{uuid.uuid4().hex[:8]}"
    weaviate = services.vectors._client
    await weaviate.collections.create(broken_collection)
    broken = DomainActivities(
        services.postgres,
        services.graph,
        VectorStore(weaviate, broken_collection),
        services.temporal,
    )
    queue = f"broken-{uuid.uuid4().hex[:8]}"
    domain_id = await new_domain_row(services, "doomed")
    async with Worker(
        services.temporal,
        task_queue=queue,
        workflows=[CreateDomainWorkflow],
        activities=[
            broken.create_graph_domain,
            broken.delete_graph_domain,
            broken.create_vector_tenant,
            broken.delete_vector_tenant,
            broken.set_domain_status,
            *RunActivities(services.runs).all(),
        ],
    ):
        output: RunOutput = await services.temporal.execute_workflow(
            CreateDomainWorkflow.run,
            CreateDomainInput(str(domain_id), "doomed"),
            id=workflow_id(str(domain_id)),
            task_queue=queue,
        )
    assert output.status is RunStatus.FAILED
    assert output.progress.error is not None
    assert "vectors step failed" in output.progress.error
    row = await domain_row(services, domain_id)
    assert row is not None
    assert row.status is DomainStatus.FAILED
    assert row.error == output.progress.error
    assert await domain_nodes(services, str(domain_id)) == 0


@pytest.mark.parametrize("role", ["authenticated", "anon"])
async def test_supabase_api_roles_cannot_read_heysh_tables(services: Services, role: str) -> None:
    await new_domain_row(services, "secret")
    url = services.settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"set role {role}")
        for table in ("domains", "domain_members", "workflow_runs"):
            with pytest.raises(errors.InsufficientPrivilege):
                await conn.execute(f"select * from heysh.{table}")
        await conn.execute("reset role")
        cur = await conn.execute(
            "select relrowsecurity from pg_class where oid = 'heysh.domains'::regclass"
        )
        assert await cur.fetchone() == (True,)


async def test_readyz_names_a_stopped_backend_and_answers_503(settings: Settings) -> None:
    ports = free_test_ports()
    temporal = TemporalService(
        port=ports.temporal,
        http_port=ports.temporal_http,
        metrics_port=ports.temporal_metrics,
        ui_port=None,
        db_file=None,
        binary=ensure_temporal(),
        log_path=Path(tempfile.mkdtemp()) / "temporal.log",
    )
    temporal.start()
    try:
        await asyncio.to_thread(temporal.wait_ready, 60)
        own = settings.model_copy(update={"temporal_address": f"127.0.0.1:{ports.temporal}"})
        async with gateway(own) as client:
            http = client.http
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["backends"]["temporal"] == {"status": "up"}
            temporal.stop()
            down = await http.get("/readyz")
            assert down.status_code == 503
            body = down.json()
            assert body["status"] == "unavailable"
            assert body["backends"]["temporal"]["status"] == "down"
            for name in ("postgres", "neo4j", "weaviate"):
                assert body["backends"][name] == {"status": "up"}
            assert (await http.get("/healthz")).status_code == 200
    finally:
        temporal.stop()
