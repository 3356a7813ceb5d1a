"""The secure profile: every store takes only TLS connections with credentials (Postgres and
Neo4j a password, Weaviate and Temporal an API key, behind the TLS proxy), heysh's clients verify
the servers against the profile's CA, and a misconfigured client stops `heysh api`, in production
mode, at start with one line naming the setting to fix and no secret.

With HEYSH_TEST_PROFILE=secure these run against the suite's own stack; otherwise the module
starts a secure stack of its own, so the plain pass proves the profile cannot fall back to plain
text either.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import grpc
import httpx
import psycopg
import pytest
import trustme
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable
from temporalio.client import Client as TemporalClient
from temporalio.client import TLSConfig

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.services import Services, open_services
from heysh.stores.graph import create_driver
from tests.conftest import SECURE_PROFILE_SUPABASE_URL, secure_profile
from tests.support.jwks import JwksServer
from tests.support.live_api import free_port

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

WRONG_PASSWORD = "wr0ng-Pass-7c1e-94ab"


@pytest.fixture(scope="module")
def secure_stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    if secure_profile():
        yield request.getfixturevalue("stack")
        return
    root = Path(tempfile.mkdtemp(prefix="heysh-secure-test-"))
    local = LocalStack.for_tests(root, secure=True)
    local.start()
    try:
        yield local
    finally:
        local.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def secure_settings(secure_stack: LocalStack) -> Settings:
    return secure_stack.test_settings()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the servers' certificates."""
    path = tmp_path_factory.mktemp("other-ca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def with_query(url: str, **params: str) -> str:
    """``url`` with these query parameters set (others kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | params
    return parts._replace(query=urlencode(query)).geturl()


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def passwords(stack: LocalStack) -> list[str]:
    return list(stack.passwords().values())


# --- each store refuses what is not encrypted and authenticated ---------------------------------


def test_postgres_refuses_a_connection_without_tls(secure_settings: Settings) -> None:
    url = with_query(secure_settings.database_url.get_secret_value(), sslmode="disable")
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry .* no encryption"):
        psycopg.connect(url, connect_timeout=5)


@pytest.mark.parametrize("password", [WRONG_PASSWORD, ""], ids=["wrong", "none"])
def test_postgres_refuses_a_tls_connection_without_the_right_password(
    secure_settings: Settings, password: str
) -> None:
    url = with_password(secure_settings.database_url.get_secret_value(), password)
    if not password:
        url = url.replace(":@", "@")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(url, connect_timeout=5)


def test_neo4j_refuses_plain_bolt_even_with_the_right_password(
    secure_stack: LocalStack, secure_settings: Settings
) -> None:
    uri = secure_settings.neo4j_uri.replace("bolt+s://", "bolt://")
    auth = (secure_settings.neo4j_user, secure_stack.passwords()["neo4j"])
    with (
        GraphDatabase.driver(uri, auth=auth, connection_timeout=5) as driver,
        pytest.raises(ServiceUnavailable, match="handshake"),
    ):
        driver.verify_connectivity()


@pytest.mark.parametrize("password", [WRONG_PASSWORD, None], ids=["wrong", "none"])
async def test_neo4j_refuses_a_tls_connection_without_the_right_password(
    secure_settings: Settings, password: str | None
) -> None:
    driver = create_driver(
        secure_settings.neo4j_uri,
        secure_settings.neo4j_user,
        password,
        ca_file=secure_settings.tls_ca_file,
    )
    try:
        with pytest.raises(AuthError):
            await driver.verify_connectivity()
    finally:
        await driver.close()


def ca_context(settings: Settings) -> ssl.SSLContext:
    assert settings.tls_ca_file is not None
    return ssl.create_default_context(cafile=settings.tls_ca_file)


def test_weaviate_refuses_plain_http_and_requests_without_the_right_api_key(
    secure_stack: LocalStack, secure_settings: Settings
) -> None:
    url = secure_settings.weaviate_url
    assert url.startswith("https://")
    plain = httpx.get(url.replace("https://", "http://") + "/v1/schema", timeout=5)
    assert plain.status_code == 400  # the TLS port answers plain HTTP, and only with a refusal
    key = secure_stack.passwords()["weaviate"]
    with httpx.Client(verify=ca_context(secure_settings), timeout=5) as client:
        for refused in ({}, {"Authorization": f"Bearer {WRONG_PASSWORD}"}):
            assert client.get(f"{url}/v1/schema", headers=refused).status_code == 401
        accepted = client.get(f"{url}/v1/schema", headers={"Authorization": f"Bearer {key}"})
        assert accepted.status_code == 200
    # Behind the proxy, Weaviate itself wants the key too.
    assert httpx.get(f"{secure_stack.weaviate.url}/v1/schema", timeout=5).status_code == 401


async def weaviate_search(
    channel: grpc.aio.Channel, key: str | None
) -> tuple[grpc.StatusCode, str]:
    """How Weaviate answers one empty Search call: the status and its message."""
    search = channel.unary_unary("/weaviate.v1.Weaviate/Search")
    metadata = None if key is None else (("authorization", f"Bearer {key}"),)
    try:
        await search(b"", metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def test_weaviate_grpc_refuses_plain_text_and_calls_without_the_right_api_key(
    secure_stack: LocalStack, secure_settings: Settings
) -> None:
    target = f"127.0.0.1:{secure_settings.weaviate_grpc_port}"
    key = secure_stack.passwords()["weaviate"]
    async with grpc.aio.insecure_channel(target) as plain:
        status, _ = await weaviate_search(plain, key)
        assert status is grpc.StatusCode.UNAVAILABLE  # no HTTP/2 without TLS on this port
    assert secure_settings.tls_ca_file is not None
    credentials = grpc.ssl_channel_credentials(secure_settings.tls_ca_file.read_bytes())
    async with grpc.aio.secure_channel(target, credentials) as tls:
        for refused in (None, WRONG_PASSWORD):
            # Weaviate refuses with UNKNOWN and this message, not with UNAUTHENTICATED.
            assert await weaviate_search(tls, refused) == (
                grpc.StatusCode.UNKNOWN,
                "extract auth: unauthorized: invalid api key",
            )
        # With the key the call gets past authentication, to fail on the empty request.
        status, message = await weaviate_search(tls, key)
        assert status is not grpc.StatusCode.UNAVAILABLE
        assert "unauthorized" not in message
        assert "could not find class" in message


async def temporal_connect(settings: Settings, api_key: str | None, *, tls: bool) -> None:
    """Connect as heysh does (the SDK calls GetSystemInfo to connect), raising its error."""
    assert settings.tls_ca_file is not None
    await TemporalClient.connect(
        settings.temporal_address,
        api_key=api_key,
        tls=TLSConfig(server_root_ca_cert=settings.tls_ca_file.read_bytes()) if tls else False,
    )


async def test_temporal_refuses_plain_text_and_calls_without_the_right_api_key(
    secure_stack: LocalStack, secure_settings: Settings
) -> None:
    key = secure_stack.passwords()["temporal"]
    with pytest.raises(RuntimeError, match="Failed client connect") as plain:
        await temporal_connect(secure_settings, key, tls=False)
    assert "Unauthenticated" not in str(plain.value)  # dropped before any header was read
    for refused in (None, WRONG_PASSWORD):
        with pytest.raises(RuntimeError, match=r"code: Unauthenticated, message: \"missing or"):
            await temporal_connect(secure_settings, refused, tls=True)
    await temporal_connect(secure_settings, key, tls=True)


# --- heysh's clients verify the servers --------------------------------------------------------


@pytest.fixture
async def secure_services(secure_settings: Settings) -> AsyncIterator[Services]:
    async with open_services(secure_settings) as opened:
        yield opened


async def test_heysh_clients_connect_over_verified_tls_with_the_profile_settings(
    secure_settings: Settings, secure_services: Services
) -> None:
    url = secure_settings.database_url.get_secret_value()
    assert dict(parse_qsl(urlsplit(url).query))["sslmode"] == "verify-full"
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        assert await cur.fetchone() == (True,)
    assert secure_settings.neo4j_uri.startswith("bolt+s://")
    assert secure_settings.weaviate_url.startswith("https://")
    assert secure_settings.temporal_tls_enabled
    # Over TLS, verified: none of the servers takes anything else (the tests above).
    assert await secure_services.readiness() == dict.fromkeys(
        ("postgres", "neo4j", "weaviate", "temporal")
    )


def test_postgres_with_another_ca_fails_on_the_certificate(
    secure_settings: Settings, other_ca: Path
) -> None:
    url = with_query(secure_settings.database_url.get_secret_value(), sslrootcert=str(other_ca))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(url, connect_timeout=5)


async def test_neo4j_with_another_ca_fails_on_the_certificate(
    secure_stack: LocalStack, secure_settings: Settings, other_ca: Path
) -> None:
    password = secure_stack.passwords()["neo4j"]
    for ca_file in (other_ca, None):  # None: the system's CAs, which do not know the local one
        driver = create_driver(
            secure_settings.neo4j_uri, secure_settings.neo4j_user, password, ca_file=ca_file
        )
        try:
            with pytest.raises(ServiceUnavailable, match="SSLCertVerificationError"):
                await driver.verify_connectivity()
        finally:
            await driver.close()


# --- `heysh api` in production refuses to start on a misconfigured secure stack, in one line ---


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    with JwksServer() as jwks:
        yield jwks.url


def production_env(stack: LocalStack, jwks_url: str) -> dict[str, str]:
    """What `heysh api` runs with in production on this stack: every secret and TLS setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEYSH_")}
    return (
        env
        | stack.settings_env()
        | {
            "HEYSH_ENV": "production",
            "HEYSH_SUPABASE_URL": SECURE_PROFILE_SUPABASE_URL,
            "HEYSH_SUPABASE_JWKS_URL": jwks_url,
        }
    )


def misconfigure(env: dict[str, str], other_ca: Path, case: str) -> dict[str, str]:
    url = env["HEYSH_DATABASE_URL"]
    if case == "wrong-ca":  # one CA setting for every store but Postgres (libpq's own)
        env["HEYSH_TLS_CA_FILE"] = str(other_ca)
    elif case == "postgres-wrong-ca":
        env["HEYSH_DATABASE_URL"] = with_query(url, sslrootcert=str(other_ca))
    elif case == "postgres-wrong-password":
        env["HEYSH_DATABASE_URL"] = with_password(url, WRONG_PASSWORD)
    elif case == "postgres-sslmode-disable":
        env["HEYSH_DATABASE_URL"] = with_query(url, sslmode="disable")
    elif case == "neo4j-wrong-password":
        env["HEYSH_NEO4J_PASSWORD"] = WRONG_PASSWORD
    elif case == "neo4j-plain-bolt":
        env["HEYSH_NEO4J_URI"] = env["HEYSH_NEO4J_URI"].replace("bolt+s://", "bolt://")
    elif case == "weaviate-wrong-api-key":
        env["HEYSH_WEAVIATE_API_KEY"] = WRONG_PASSWORD
    elif case == "weaviate-plain-http":
        env["HEYSH_WEAVIATE_URL"] = env["HEYSH_WEAVIATE_URL"].replace("https://", "http://")
    elif case == "temporal-wrong-api-key":
        env["HEYSH_TEMPORAL_API_KEY"] = WRONG_PASSWORD
    elif case == "temporal-plain-text":
        env["HEYSH_TEMPORAL_TLS"] = "false"
    else:
        raise AssertionError(case)
    return env


TLS_CA_HINT = "(TLS failed: check HEYSH_TLS_CA_FILE (unset: the system's CAs) and the host in "
MISCONFIGURATIONS: dict[str, dict[str, str]] = {
    "wrong-ca": {
        "neo4j": TLS_CA_HINT + "HEYSH_NEO4J_URI)",
        "weaviate": TLS_CA_HINT + "HEYSH_WEAVIATE_URL)",
        "temporal": TLS_CA_HINT + "HEYSH_TEMPORAL_ADDRESS)",
    },
    "postgres-wrong-ca": {
        "postgres": "(TLS failed: check sslmode, sslrootcert and the host in HEYSH_DATABASE_URL)"
    },
    "postgres-wrong-password": {
        "postgres": "(credentials refused: check the user and password in HEYSH_DATABASE_URL)"
    },
    "postgres-sslmode-disable": {
        "postgres": "(TLS required: the server requires TLS: set "
        "sslmode=verify-full and sslrootcert in HEYSH_DATABASE_URL)"
    },
    "neo4j-wrong-password": {
        "neo4j": "(credentials refused: check HEYSH_NEO4J_USER and HEYSH_NEO4J_PASSWORD)"
    },
    "neo4j-plain-bolt": {
        "neo4j": "(handshake refused: if the server requires TLS, use neo4j+s:// "
        "or bolt+s:// in HEYSH_NEO4J_URI)"
    },
    "weaviate-wrong-api-key": {"weaviate": "(credentials refused: check HEYSH_WEAVIATE_API_KEY)"},
    "weaviate-plain-http": {
        "weaviate": "(plain text refused: the server requires TLS: use https:// in "
        "HEYSH_WEAVIATE_URL)"
    },
    "temporal-wrong-api-key": {"temporal": "(credentials refused: check HEYSH_TEMPORAL_API_KEY)"},
    "temporal-plain-text": {
        "temporal": "(connection dropped: if the server requires TLS, set "
        "HEYSH_TEMPORAL_API_KEY or HEYSH_TEMPORAL_TLS=true)"
    },
}


def run_api(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "heysh", "api"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,  # the check gives up after 10 s; a process that serves anyway is a failure
        check=False,
    )


def assert_no_secret(stack: LocalStack, result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    output = result.stderr + result.stdout
    for secret in [*passwords(stack), WRONG_PASSWORD]:
        assert secret not in output


@pytest.mark.parametrize("case", list(MISCONFIGURATIONS))
def test_misconfigured_client_stops_api_start_up_naming_the_setting_and_no_secret(
    secure_stack: LocalStack, other_ca: Path, jwks_url: str, tmp_path: Path, case: str
) -> None:
    env = misconfigure(production_env(secure_stack, jwks_url), other_ca, case)
    result = run_api(env, tmp_path)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("heysh api: cannot reach ")
    expected = MISCONFIGURATIONS[case]
    for backend in ("postgres", "neo4j", "weaviate", "temporal"):
        # Only the misconfigured ones are named, each with the setting to look at.
        assert (f"{backend} at " in last_line) is (backend in expected), last_line
    for hint in expected.values():
        assert hint in last_line
    assert_no_secret(secure_stack, result)


@pytest.mark.parametrize(
    "setting",
    ["HEYSH_WEAVIATE_API_KEY", "HEYSH_TEMPORAL_API_KEY", "HEYSH_NEO4J_PASSWORD"],
)
def test_a_missing_credential_stops_production_start_up_before_any_connection(
    secure_stack: LocalStack, jwks_url: str, tmp_path: Path, setting: str
) -> None:
    env = production_env(secure_stack, jwks_url)
    del env[setting]
    result = run_api(env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"heysh: refusing to start with HEYSH_ENV=production: {setting} is missing or a placeholder"
    ]
    assert_no_secret(secure_stack, result)


def test_the_production_api_starts_on_the_secure_stack_without_graphiql_or_introspection(
    secure_stack: LocalStack, jwks_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = production_env(secure_stack, jwks_url) | {
        "HEYSH_API_HOST": "127.0.0.1",
        "HEYSH_API_PORT": str(port),
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "heysh", "api"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, "heysh api stopped"
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "heysh api did not serve within 60 s"
                time.sleep(0.2)
        assert ready.status_code == 200, ready.text  # every store answered over TLS
        assert httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}).status_code != 200
        probe = {"query": "{ __schema { queryType { name } } }"}
        body = httpx.post(f"{base}/graphql", json=probe, timeout=5).json()
        assert "data" not in body or body["data"] is None
        assert body["errors"]
    finally:
        api.terminate()
        output, _ = api.communicate(timeout=30)
    for secret in passwords(secure_stack):
        assert secret not in output
