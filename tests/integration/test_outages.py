"""Store outages: each store stopped for real, answered as STORE_UNAVAILABLE, survived after.

These tests stop a service of the session's own stack. Every stop is undone in a ``finally``
that waits for the service to be ready again, and each test ends by proving that the clients
it shares with the rest of the suite (the api's and the worker's) work again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from psycopg_pool import AsyncConnectionPool

from heysh.app import create_app
from heysh.config import Settings
from heysh.errors import StoreError
from heysh.local.services import LocalService
from heysh.local.stack import LocalStack
from heysh.services import Services
from heysh.stores.graph import GraphStore
from heysh.stores.migrations import apply_migrations
from heysh.stores.postgres import PostgresStore
from tests.support.documents import (
    DELETE,
    DOCUMENT,
    active_domain,
    add_document,
    fixture_text,
    raw_id,
    ready_document,
    store_counts,
    wait_document,
)
from tests.support.graphql import GraphQLClient, eventually

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

DOMAINS = "{ domains(first: 5) { edges { node { id name status } } } }"
RESTART_TIMEOUT = 180.0


# --- helpers -------------------------------------------------------------------------------------


@dataclass
class Gateway:
    api: GraphQLClient
    services: Services  # the app's own clients, so a test can look at its connection pool


@contextlib.asynccontextmanager
async def own_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield Gateway(GraphQLClient(http, settings), app.state.services)


@contextlib.asynccontextmanager
async def stopped(service: LocalService) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Stop ``service``; yields a function that starts it again and waits until it is ready.
    However the body ends, the service is running and ready afterwards."""
    await asyncio.to_thread(service.stop)

    async def restart() -> None:
        if not service.running:
            service.start()  # from this thread: the parent-death signal is tied to it
            await asyncio.to_thread(service.wait_ready, RESTART_TIMEOUT)

    try:
        yield restart
    finally:
        await restart()


async def assert_readyz_names(api: GraphQLClient, down: str | None) -> None:
    answer = await api.http.get("/readyz")
    body = answer.json()
    assert answer.status_code == (200 if down is None else 503), body
    for name, state in body["backends"].items():
        assert state["status"] == ("down" if name == down else "up"), body


def assert_store_unavailable(body: dict[str, Any], *ports: int) -> None:
    """One STORE_UNAVAILABLE error whose text names no host or port of the store."""
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "STORE_UNAVAILABLE", body
    text = json.dumps(error)
    assert "INTERNAL_SERVER_ERROR" not in text
    for internal in ("127.0.0.1", "localhost", "bolt://", *map(str, ports)):
        assert internal not in text, body


async def dry_run(api: GraphQLClient, user: str, document_id: str) -> dict[str, Any]:
    return await api.execute(DELETE, {"id": document_id, "dryRun": True}, user=user)


async def impact(api: GraphQLClient, user: str, document_id: str) -> dict[str, Any]:
    body = await dry_run(api, user, document_id)
    assert "errors" not in body, body
    payload = body["data"]["deleteDocument"]
    assert payload["__typename"] == "DeleteDocumentSuccess", payload
    result: dict[str, Any] = payload["impact"]
    return result


# --- one store down at a time: /readyz, a query that needs it, and recovery ---------------------


async def test_postgres_outage_is_store_unavailable_and_the_api_recovers_after_restart(
    stack: LocalStack, settings: Settings, worker: None
) -> None:
    async with own_gateway(settings) as gateway:
        api = gateway.api
        await active_domain(api, "pat", "Postgres outage")
        before = await api.data(DOMAINS, user="pat")
        # Hold several connections at once, so the api's pool has more than one to go stale.
        pool: AsyncConnectionPool = gateway.services.postgres._pool
        async with contextlib.AsyncExitStack() as held:
            for _ in range(3):
                conn = await held.enter_async_context(pool.connection())
                await conn.execute("select 1")

        async with stopped(stack.postgres) as restart:
            await assert_readyz_names(api, "postgres")
            assert_store_unavailable(await api.execute(DOMAINS, user="pat"), stack.postgres.port)
            await restart()
            # More requests than the pool held connections: none may meet a dead one.
            for _ in range(5):
                assert await api.data(DOMAINS, user="pat") == before
            await assert_readyz_names(api, None)


@pytest.mark.parametrize("store", ["neo4j", "weaviate"])
async def test_graph_or_vector_outage_is_store_unavailable_and_the_api_recovers_after_restart(
    stack: LocalStack, settings: Settings, worker: None, store: str
) -> None:
    service: LocalService = stack.neo4j if store == "neo4j" else stack.weaviate
    async with own_gateway(settings) as gateway:
        api = gateway.api
        domain = await active_domain(api, "pat", f"{store} outage")
        document = await ready_document(api, "pat", domain, "curie.md")
        # No read query of the api touches these stores yet; a delete's dry run reads both.
        expected = await impact(api, "pat", document["id"])
        assert expected["chunks"] == expected["vectors"] == document["chunkCount"]

        async with stopped(service) as restart:
            await assert_readyz_names(api, store)
            body = await dry_run(api, "pat", document["id"])
            assert_store_unavailable(body, *service.ports.values())
            await restart()
            assert await impact(api, "pat", document["id"]) == expected
            await assert_readyz_names(api, None)


# --- a store restarted in the middle of an ingestion ---------------------------------------------


def long_document() -> str:
    """About 30 kB of the fixture texts, each copy numbered, so the embed stage takes a while."""
    parts = [fixture_text("curie.md"), fixture_text("einstein.md")]
    return "\n\n".join(f"## Section {n}\n\n{parts[n % 2]}" for n in range(24))


@pytest.fixture(scope="module")
async def clean_run(
    api: GraphQLClient, services: Services
) -> tuple[dict[str, Any], dict[str, int]]:
    """The document and store counts of the long document ingested with every store up."""
    domain = await active_domain(api, "rui", "Clean run")
    added = await add_document(api, "rui", domain, "long", long_document())
    document = await wait_document(api, "rui", added["document"]["id"])
    assert document["status"] == "READY", document
    return document, await store_counts(services, domain)


async def pending_attempts(services: Services, run_id: str, activity: str) -> int:
    """The attempt the run's pending ``activity`` is on (0 when none is pending)."""
    description = await services.temporal.get_workflow_handle(run_id).describe()
    return max(
        (
            pending.attempt
            for pending in description.raw_description.pending_activities
            if pending.activity_type.name == activity
        ),
        default=0,
    )


@pytest.mark.parametrize(
    ("store", "activity"), [("neo4j", "write_graph"), ("weaviate", "index_chunks")]
)
async def test_ingestion_retries_through_a_store_restart_and_matches_a_clean_run(
    stack: LocalStack,
    api: GraphQLClient,
    services: Services,
    clean_run: tuple[dict[str, Any], dict[str, int]],
    store: str,
    activity: str,
) -> None:
    service: LocalService = stack.neo4j if store == "neo4j" else stack.weaviate
    clean_document, clean_counts = clean_run
    domain = await active_domain(api, "rui", f"{store} restart")
    added = await add_document(api, "rui", domain, "long", long_document())
    document_id, run_id = added["document"]["id"], raw_id(added["run"]["id"])

    async def stage() -> Any:
        return (await api.data(DOCUMENT, {"id": document_id}, user="rui"))["document"]["lastRun"]

    # Embedding touches neither store; the stage that writes to this one comes after it.
    run = await eventually(stage, lambda r: r["stage"] != "chunk" and r["stage"] != "queued")
    assert run["stage"] == "embed", f"the run passed the embed stage before the stop: {run}"
    async with stopped(service) as restart:
        # The writing activity must really meet the outage and fail at least once.
        await eventually(
            lambda: pending_attempts(services, run_id, activity), lambda n: n >= 2, within=120
        )
        await asyncio.sleep(3)
        await restart()

    document = await wait_document(api, "rui", document_id, within=300)
    assert document["status"] == "READY", document
    counts = ("chunkCount", "entityCount", "relationshipCount")
    assert {k: document[k] for k in counts} == {k: clean_document[k] for k in counts}
    assert await store_counts(services, domain) == clean_counts


# --- limits and indexes that keep a store answering ----------------------------------------------

# Counts to a billion: minutes of work unless the server stops it.
SLOW_READ: LiteralString = (
    "UNWIND range(1, 1000000000) AS i WITH i WHERE i % 7 = 0 RETURN count(i) AS n"
)


async def test_a_graph_read_past_its_timeout_is_stopped_by_the_server(services: Services) -> None:
    graph = GraphStore(services.graph._driver, services.settings.neo4j_database, read_timeout=0.5)
    with pytest.raises(StoreError, match=r"took longer than its limit of 0\.5s"):
        await asyncio.wait_for(graph._read(SLOW_READ), 60)
    running = await services.graph._read(
        "SHOW TRANSACTIONS YIELD currentQuery WHERE currentQuery STARTS WITH 'UNWIND range'"
        " RETURN count(*) AS n"
    )
    assert running[0]["n"] == 0
    assert await services.graph.count_document_chunks(str(uuid.uuid4())) == 0


def subject_id(n: int) -> uuid.UUID:
    """The subject id the SQL below gives document ``n``: md5('subject' || n)::uuid."""
    return uuid.UUID(hashlib.md5(f"subject{n}".encode()).hexdigest())  # noqa: S324


@contextlib.asynccontextmanager
async def scratch_database(settings: Settings) -> AsyncIterator[str]:
    """A database of its own on the suite's Postgres, migrated, dropped afterwards."""
    url = settings.database_url.get_secret_value()
    name = f"plan_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(f"create database {name}")
        try:
            scratch = url.rsplit("/", 1)[0] + f"/{name}"
            await asyncio.to_thread(apply_migrations, scratch)
            yield scratch
        finally:
            await admin.execute(f"drop database {name} with (force)")


async def test_latest_run_per_subject_is_read_through_the_subject_index(
    settings: Settings,
) -> None:
    async with scratch_database(settings) as url:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            # A realistic history: 200 domains, 20,000 documents, 3 runs per document.
            await conn.execute(
                "insert into heysh.domains (id, name, created_by)"
                " select gen_random_uuid(), 'domain ' || d, gen_random_uuid()"
                " from generate_series(1, 200) d"
            )
            await conn.execute(
                "insert into heysh.workflow_runs"
                " (id, domain_id, kind, subject_id, started_by, created_at)"
                " select 'run-' || s || '-' || r, dm.id, 'PROCESS_DOCUMENT',"
                " md5('subject' || s)::uuid, dm.created_by,"
                " now() - make_interval(mins => s * 10 + r)"
                " from generate_series(1, 20000) s"
                " cross join generate_series(1, 3) r"
                " join (select id, created_by, row_number() over (order by id) - 1 as k"
                "       from heysh.domains) dm on dm.k = s % 200"
            )
            await conn.execute("analyze heysh.workflow_runs")
            cur = await conn.execute(
                "select indisvalid from pg_index"
                " where indexrelid = 'heysh.workflow_runs_subject_idx'::regclass"
            )
            assert await cur.fetchone() == (True,)

        plans: list[str] = []

        async def explain_every_query(conn: psycopg.AsyncConnection[Any]) -> None:
            # auto_explain sends the plan of each statement the store runs back as a notice.
            await conn.execute("load 'auto_explain'")
            await conn.execute("set auto_explain.log_min_duration = 0")
            await conn.execute("set auto_explain.log_level = notice")
            await conn.execute("set auto_explain.log_format = json")
            conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))

        subjects = [subject_id(s) for s in (7, 700, 7000)]
        async with AsyncConnectionPool(
            url, min_size=1, max_size=1, kwargs={"autocommit": True}, configure=explain_every_query
        ) as pool:
            latest = await PostgresStore(pool).latest_runs(subjects)

        assert {s: latest[s].id for s in subjects} == {
            subjects[0]: "run-7-1",
            subjects[1]: "run-700-1",
            subjects[2]: "run-7000-1",
        }
        (plan,) = [p for p in plans if "workflow_runs" in p]
        assert "workflow_runs_subject_idx" in plan, plan
        assert '"Seq Scan"' not in plan, plan


async def test_ingestion_outlasts_five_failed_attempts_against_a_stopped_weaviate(
    stack: LocalStack,
    api: GraphQLClient,
    services: Services,
    clean_run: tuple[dict[str, Any], dict[str, int]],
) -> None:
    # The first step withdraws what an earlier run left, through Weaviate's REST API, whose
    # refused connections fail at once: only the run's retry policy waits out the outage. The
    # store stays down until five attempts have failed (15 s of waits between them), then
    # restarts (10-15 s here); the run must still have attempts left.
    clean_document, clean_counts = clean_run
    domain = await active_domain(api, "rui", "weaviate down at start")
    async with stopped(stack.weaviate) as restart:
        added = await add_document(api, "rui", domain, "long", long_document())
        run_id = raw_id(added["run"]["id"])
        await eventually(
            lambda: pending_attempts(services, run_id, "begin_document"),
            lambda n: n >= 6,  # the sixth is scheduled only once the fifth has failed
            within=120,
        )
        await restart()

    document = await wait_document(api, "rui", added["document"]["id"], within=300)
    assert document["status"] == "READY", document
    counts = ("chunkCount", "entityCount", "relationshipCount")
    assert {k: document[k] for k in counts} == {k: clean_document[k] for k in counts}
    assert await store_counts(services, domain) == clean_counts
