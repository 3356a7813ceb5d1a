"""Shared fixtures: the real local stack (started once per run), settings, api and worker."""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.services import Services, open_services
from heysh.stores.migrations import apply_migrations
from heysh.worker import build_worker, prepare_stores
from tests.support.graphql import GraphQLClient, gateway
from tests.support.query_count import statements  # noqa: F401 - a fixture for every test


def secure_profile() -> bool:
    """HEYSH_TEST_PROFILE=secure runs the suite against Postgres and Neo4j with TLS and passwords
    (LocalStack's secure profile); unset or `plain`, against the plain local stack."""
    profile = os.environ.get("HEYSH_TEST_PROFILE", "plain")
    if profile not in ("plain", "secure"):
        raise pytest.UsageError(f"HEYSH_TEST_PROFILE must be plain or secure, not {profile!r}")
    return profile == "secure"


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    root = Path(tempfile.mkdtemp(prefix="heysh-test-"))
    local = LocalStack.for_tests(root, secure=secure_profile())
    local.start()
    try:
        apply_migrations(local.settings_env()["HEYSH_DATABASE_URL"])
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def settings(stack: LocalStack) -> Settings:
    return stack.test_settings(
        task_queue=f"heysh-test-{uuid.uuid4().hex[:8]}",
        supabase_jwt_secret=secrets.token_urlsafe(32),  # per session: no secret is committed
        introspection=True,
        graphiql=True,
    )


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as opened:
        await prepare_stores(opened)
        yield opened


@pytest.fixture(scope="session")
async def worker(services: Services) -> AsyncIterator[None]:
    """A worker on the suite's task queue, running for the whole session."""
    running = build_worker(services)
    async with running:
        yield


@pytest.fixture(scope="session")
async def api(settings: Settings, worker: None) -> AsyncIterator[GraphQLClient]:
    """The real gateway app (lifespan and all) behind an HTTP client, with a worker running."""
    async with gateway(settings) as client:
        yield client
