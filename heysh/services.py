"""The backend clients, created once per process (api lifespan or worker main) and injected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client as TemporalClient

from heysh.config import Settings
from heysh.stores.documents import DocumentStore
from heysh.stores.graph import GraphStore, create_driver
from heysh.stores.postgres import PostgresStore, create_pool
from heysh.stores.vectors import VectorStore, create_client

log = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 3.0


@dataclass
class Services:
    settings: Settings
    postgres: PostgresStore
    documents: DocumentStore
    graph: GraphStore
    vectors: VectorStore
    temporal: TemporalClient

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


async def connect_temporal(settings: Settings, *, lazy: bool = False) -> TemporalClient:
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await TemporalClient.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=settings.temporal_tls_enabled,
        lazy=lazy,
    )


@asynccontextmanager
async def open_services(settings: Settings, *, lazy: bool = False) -> AsyncIterator[Services]:
    """Create every client; ``lazy`` lets the api start while a backend is still down."""
    pool = create_pool(settings.database_url.get_secret_value(), settings.database_pool_size)
    await pool.open(wait=not lazy)
    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
    driver = create_driver(settings.neo4j_uri, settings.neo4j_user, password)
    api_key = settings.weaviate_api_key.get_secret_value() if settings.weaviate_api_key else None
    weaviate_client = create_client(settings.weaviate_url, settings.weaviate_grpc_port, api_key)
    try:
        await weaviate_client.connect()
        services = Services(
            settings=settings,
            postgres=PostgresStore(pool),
            documents=DocumentStore(pool),
            graph=GraphStore(driver, settings.neo4j_database),
            vectors=VectorStore(weaviate_client, settings.weaviate_collection),
            temporal=await connect_temporal(settings, lazy=lazy),
        )
        if not lazy:
            await services.vectors.ping()
            await services.graph.ping()
        yield services
    finally:
        await weaviate_client.close()
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
