"""The backend clients, created once per process (api lifespan or worker main) and injected."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client as TemporalClient
from temporalio.client import TLSConfig
from temporalio.runtime import Runtime
from weaviate.exceptions import UnexpectedStatusCodeError

from heysh.config import Settings
from heysh.errors import HeyshError
from heysh.stores.chunks import ChunkStore
from heysh.stores.documents import DocumentStore
from heysh.stores.domain_events import DomainEventStore
from heysh.stores.engine import WorkflowEngine
from heysh.stores.graph import GraphStore, create_driver
from heysh.stores.journal import JournalStore
from heysh.stores.members import MemberStore
from heysh.stores.postgres import PostgresStore, create_pool
from heysh.stores.provenance import ProvenanceStore
from heysh.stores.runs import RunStore
from heysh.stores.vectors import VectorStore, create_client
from heysh.telemetry.tracing import temporal_interceptors

if TYPE_CHECKING:
    from weaviate import WeaviateAsyncClient

    from heysh.pipeline.embedding import Embedder

log = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 3.0
# Long enough for a cold TLS connect to a hosted backend, short enough that a wrong address is
# reported at once instead of after a client library's own minute of retries.
STARTUP_TIMEOUT_SECONDS = 10.0


class BackendUnreachableError(HeyshError):
    """A backend did not answer at start-up; names it and its address, never a credential."""

    code = "STORE_UNAVAILABLE"


@dataclass
class Services:
    settings: Settings
    postgres: PostgresStore
    documents: DocumentStore
    chunks: ChunkStore
    journal: JournalStore
    members: MemberStore
    provenance: ProvenanceStore
    runs: RunStore
    domain_events: DomainEventStore
    graph: GraphStore
    vectors: VectorStore
    temporal: TemporalClient
    _query_embedder: Embedder | None = field(default=None, init=False, repr=False)
    _query_embedder_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @functools.cached_property
    def engine(self) -> WorkflowEngine:
        """Starting and stopping runs, with the workflow service's failures as StoreError."""
        return WorkflowEngine(self.temporal, self.settings.task_queue)

    async def query_embedder(self) -> Embedder:
        """The embedder search queries are embedded with: the configured one (as the worker's),
        built on first use and kept for the process (loading MiniLM takes about a second)."""
        if self._query_embedder is None:
            async with self._query_embedder_lock:
                if self._query_embedder is None:
                    # Imported here: processes that never search need not load onnxruntime.
                    from heysh.pipeline.factory import build_embedder

                    self._query_embedder = await asyncio.to_thread(build_embedder, self.settings)
        return self._query_embedder

    async def readiness(self) -> dict[str, str | None]:
        """Backend name -> None when it answers, else a short reason (never a secret)."""
        checks: dict[str, Callable[[], Awaitable[object]]] = {
            "postgres": self.postgres.ping,
            "neo4j": self.graph.ping,
            "weaviate": self.vectors.ping,
            "temporal": self._ping_temporal,
        }
        results = await asyncio.gather(*(_probe(check) for check in checks.values()))
        return dict(zip(checks, results, strict=True))

    async def _ping_temporal(self) -> None:
        await self.temporal.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=READINESS_TIMEOUT_SECONDS)
        )


async def connect_temporal(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> TemporalClient:
    """``runtime``: the worker's, when it exports metrics (heysh.telemetry.worker_metrics)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    tls: bool | TLSConfig = settings.temporal_tls_enabled
    if tls and settings.tls_ca_file is not None:
        tls = TLSConfig(server_root_ca_cert=settings.tls_ca_file.read_bytes())
    return await TemporalClient.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=tls,
        lazy=lazy,
        runtime=runtime,
        # Tracing (when on): workers built on this client inherit it.
        interceptors=temporal_interceptors(),
    )


def weaviate_client(settings: Settings) -> WeaviateAsyncClient:
    """The Weaviate client ``settings`` describe, not yet connected (``await client.connect()``)."""
    api_key = settings.weaviate_api_key.get_secret_value() if settings.weaviate_api_key else None
    return create_client(
        settings.weaviate_url, settings.weaviate_grpc_port, api_key, ca_file=settings.tls_ca_file
    )


@asynccontextmanager
async def open_services(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> AsyncIterator[Services]:
    """Create every client; ``lazy`` lets the api start while a backend is still down;
    ``runtime`` is the Temporal client's (the default one when None)."""
    pool = create_pool(settings.database_url.get_secret_value(), settings.database_pool_size)
    await pool.open(wait=not lazy)
    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
    driver = create_driver(
        settings.neo4j_uri, settings.neo4j_user, password, ca_file=settings.tls_ca_file
    )
    vectors = weaviate_client(settings)
    try:
        await vectors.connect()
        services = Services(
            settings=settings,
            postgres=PostgresStore(pool),
            documents=DocumentStore(pool),
            chunks=ChunkStore(pool),
            journal=JournalStore(pool),
            members=MemberStore(pool),
            provenance=ProvenanceStore(pool),
            runs=RunStore(pool),
            domain_events=DomainEventStore(pool),
            graph=GraphStore(
                driver, settings.neo4j_database, read_timeout=settings.neo4j_read_timeout_seconds
            ),
            vectors=VectorStore(vectors, settings.weaviate_collection),
            temporal=await connect_temporal(settings, lazy=lazy, runtime=runtime),
        )
        if not lazy:
            await services.vectors.ping()
            await services.graph.ping()
        yield services
    finally:
        await vectors.close()
        await driver.close()
        await pool.close()


async def _probe(check: Callable[[], Awaitable[object]]) -> str | None:
    try:
        await asyncio.wait_for(check(), READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; report its kind only
        log.warning("readiness check failed: %s", type(exc).__name__)
        return f"unavailable ({type(exc).__name__})"
    return None


# --- the start-up check ---------------------------------------------------------------------------


async def check_backends(settings: Settings) -> None:
    """Connect to every backend once, side by side, and raise one error naming each that failed.

    `heysh api` and `heysh worker` run this before serving, so a wrong address or a backend that
    is down stops start-up with one line. Outages after start-up are /readyz's business.
    """
    checks: list[tuple[str, str, Callable[[], Awaitable[object]]]] = [
        ("postgres", postgres_address(settings), lambda: _check_postgres(settings)),
        ("neo4j", _url_address(settings.neo4j_uri, 7687), lambda: _check_neo4j(settings)),
        ("weaviate", _weaviate_address(settings), lambda: _check_weaviate(settings)),
        ("temporal", settings.temporal_address, lambda: connect_temporal(settings)),
    ]
    reasons = await asyncio.gather(*(_attempt(check) for _, _, check in checks))
    failed = [
        f"{name} at {address} ({_with_hint(name, reason)})"
        for (name, address, _), reason in zip(checks, reasons, strict=True)
        if reason is not None
    ]
    if failed:
        raise BackendUnreachableError("cannot reach " + "; ".join(failed))


def postgres_address(settings: Settings) -> str:
    """host:port/database from the connection string, which also holds the password."""
    try:
        info = conninfo_to_dict(settings.database_url.get_secret_value())
    except psycopg.ProgrammingError:
        return "HEYSH_DATABASE_URL (not a valid connection string)"
    host = info.get("host") or info.get("hostaddr") or "the local socket"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}".rstrip("/")


def _url_address(url: str, default_port: int) -> str:
    """scheme://host:port only: a URL may carry user:password@, which must not be printed."""
    parts = urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError:
        return f"{parts.scheme}://{parts.hostname} (invalid port)"
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _weaviate_address(settings: Settings) -> str:
    https = urlsplit(settings.weaviate_url).scheme == "https"
    return _url_address(settings.weaviate_url, 443 if https else 80)


async def _check_postgres(settings: Settings) -> None:
    conn = await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value(),
        connect_timeout=int(STARTUP_TIMEOUT_SECONDS),
        prepare_threshold=None,  # as the pool does, for Supabase's transaction pooler
        autocommit=True,
    )
    async with conn:
        await conn.execute("select 1")


async def _check_neo4j(settings: Settings) -> None:
    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
    driver = create_driver(
        settings.neo4j_uri, settings.neo4j_user, password, ca_file=settings.tls_ca_file
    )
    try:
        # Not GraphStore.ping: execute_query retries an unreachable server for 30 s.
        await driver.verify_connectivity()
    finally:
        await driver.close()


async def _check_weaviate(settings: Settings) -> None:
    client = weaviate_client(settings)
    try:
        await client.connect()  # fetches the server's meta over HTTP
        await VectorStore(client, settings.weaviate_collection).ping()
    except UnexpectedStatusCodeError as exc:
        # Weaviate never answers 400 to its meta endpoint; a TLS port answers plain HTTP so.
        if exc.status_code == 400 and urlsplit(settings.weaviate_url).scheme == "http":
            raise ConnectionError("plain HTTP answered 400 Bad Request") from exc
        raise
    finally:
        await client.close()


async def _attempt(check: Callable[[], Awaitable[object]]) -> str | None:
    """None when ``check`` succeeds, else why it failed in a few words, taken from the kind of
    error only: client messages can quote connection strings or server replies."""
    try:
        await asyncio.wait_for(check(), STARTUP_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {STARTUP_TIMEOUT_SECONDS:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable; classified below
        return _reason(exc)
    return None


# Checked in order against the error chain's type names and messages, lower-cased.
_REASONS: dict[str, tuple[str, ...]] = {
    # Postgres's pg_hba refusal of a connection without TLS ("..., no encryption").
    "TLS required": ("no encryption",),
    # A Neo4j that requires TLS closes a plain Bolt handshake without answering it.
    "handshake refused": ("incomplete handshake",),
    # A TLS port answers plain HTTP/1 with 400 (Weaviate's check says so) and drops HTTP/2.
    "plain text refused": ("plain http answered 400",),
    "connection refused": ("connectionrefused", "connection refused", "connect call failed"),
    "host not found": ("gaierror", "not known", "failed to resolve", "dns error", "nodename"),
    "network unreachable": ("network is unreachable", "no route to host"),
    "credentials refused": ("auth", "password", "permission denied", "forbidden"),
    "TLS failed": ("certificate", "ssl"),
    # Less specific than all above: a server (or a TLS port) that hung up on us.
    "connection dropped": (
        "broken pipe",
        "connection reset",
        "connectionreset",
        "connection closed",
    ),
    "timed out": ("timeout", "timed out"),
}


# The settings to look at, by backend and reason: names only, so no value is ever printed.
_HINTS: dict[tuple[str, str], str] = {
    ("postgres", "TLS required"): "the server requires TLS: set sslmode=verify-full and "
    "sslrootcert in HEYSH_DATABASE_URL",
    ("postgres", "credentials refused"): "check the user and password in HEYSH_DATABASE_URL",
    ("postgres", "TLS failed"): "check sslmode, sslrootcert and the host in HEYSH_DATABASE_URL",
    ("neo4j", "handshake refused"): "if the server requires TLS, use neo4j+s:// or bolt+s:// "
    "in HEYSH_NEO4J_URI",
    ("neo4j", "credentials refused"): "check HEYSH_NEO4J_USER and HEYSH_NEO4J_PASSWORD",
    ("neo4j", "TLS failed"): "check HEYSH_TLS_CA_FILE (unset: the system's CAs) and the host in "
    "HEYSH_NEO4J_URI",
    ("weaviate", "credentials refused"): "check HEYSH_WEAVIATE_API_KEY",
    ("weaviate", "plain text refused"): "the server requires TLS: use https:// in "
    "HEYSH_WEAVIATE_URL",
    ("weaviate", "TLS failed"): "check HEYSH_TLS_CA_FILE (unset: the system's CAs) and the host in "
    "HEYSH_WEAVIATE_URL",
    ("temporal", "credentials refused"): "check HEYSH_TEMPORAL_API_KEY",
    ("temporal", "connection dropped"): "if the server requires TLS, set HEYSH_TEMPORAL_API_KEY "
    "or HEYSH_TEMPORAL_TLS=true",
    ("temporal", "TLS failed"): "check HEYSH_TLS_CA_FILE (unset: the system's CAs) and the host in "
    "HEYSH_TEMPORAL_ADDRESS",
}


def _with_hint(backend: str, reason: str) -> str:
    hint = _HINTS.get((backend, reason))
    return reason if hint is None else f"{reason}: {hint}"


def _reason(exc: BaseException) -> str:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(f"{type(e).__name__} {e}" for e in seen).lower()
    for reason, needles in _REASONS.items():
        if any(needle in text for needle in needles):
            return reason
    return f"unavailable: {type(exc).__name__}"
