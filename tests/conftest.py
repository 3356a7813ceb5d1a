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
from tests.support.jwks import JwksServer, ec_key
from tests.support.query_count import statements  # noqa: F401 - a fixture for every test
from tests.support.tokens import trust_jwks

# The issuer of the secure profile's tokens; only its name is used (keys come from the JWKS URL).
SECURE_PROFILE_SUPABASE_URL = "https://heysh-secure-profile.supabase.co"


def secure_profile() -> bool:
    """HEYSH_TEST_PROFILE=secure runs the suite as production runs: every store behind TLS with
    credentials (LocalStack's secure profile), and the api and worker in production mode with
    tokens verified through a JWKS endpoint. Unset or `plain`: the plain local stack, test mode."""
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
def settings(stack: LocalStack) -> Iterator[Settings]:
    task_queue = f"heysh-test-{uuid.uuid4().hex[:8]}"
    if not stack.secure:
        yield stack.test_settings(
            task_queue=task_queue,
            supabase_jwt_secret=secrets.token_urlsafe(32),  # per session: no secret is committed
            introspection=True,
            graphiql=True,
        )
        return
    # Production as Supabase configures it: ES256 tokens checked against the project's JWKS
    # (here a local endpoint), GraphiQL and introspection off by default, every secret set
    # (the stack's credentials, and a metrics token; OpenAI's is not used by MiniLM).
    key = ec_key()
    with JwksServer([key]) as jwks:
        trust_jwks(jwks.url, key)
        yield stack.test_settings(
            env="production",
            task_queue=task_queue,
            supabase_url=SECURE_PROFILE_SUPABASE_URL,
            supabase_jwks_url=jwks.url,
            metrics_token=secrets.token_urlsafe(32),
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
