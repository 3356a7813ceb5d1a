"""The secure profile: Postgres and Neo4j take only TLS connections with a password, heysh's
clients verify the servers against the profile's CA, and a misconfigured client stops `heysh api`
at start with one line naming the setting to fix and no secret.

With HEYSH_TEST_PROFILE=secure these run against the suite's own stack; otherwise the module
starts a secure stack of its own, so the plain pass proves the profile cannot fall back to plain
text either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
import pytest
import trustme
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.services import Services, open_services
from heysh.stores.graph import create_driver
from tests.conftest import secure_profile

pytestmark = pytest.mark.integration

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
    await secure_services.postgres.ping()
    assert secure_settings.neo4j_uri.startswith("bolt+s://")
    await secure_services.graph.ping()  # over TLS: the server takes nothing else (test above)


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


# --- `heysh api` refuses to start on a misconfigured secure stack, in one line -------------------


def misconfigured(stack: LocalStack, other_ca: Path, case: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEYSH_")}
    env.update(stack.settings_env())
    env["HEYSH_ENV"] = "test"
    url = env["HEYSH_DATABASE_URL"]
    if case == "postgres-wrong-ca":
        env["HEYSH_DATABASE_URL"] = with_query(url, sslrootcert=str(other_ca))
    elif case == "postgres-wrong-password":
        env["HEYSH_DATABASE_URL"] = with_password(url, WRONG_PASSWORD)
    elif case == "postgres-sslmode-disable":
        env["HEYSH_DATABASE_URL"] = with_query(url, sslmode="disable")
    elif case == "neo4j-wrong-ca":
        env["HEYSH_TLS_CA_FILE"] = str(other_ca)
    elif case == "neo4j-wrong-password":
        env["HEYSH_NEO4J_PASSWORD"] = WRONG_PASSWORD
    elif case == "neo4j-plain-bolt":
        env["HEYSH_NEO4J_URI"] = env["HEYSH_NEO4J_URI"].replace("bolt+s://", "bolt://")
    else:
        raise AssertionError(case)
    return env


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "postgres-wrong-ca",
            "(TLS failed: check sslmode, sslrootcert and the host in HEYSH_DATABASE_URL)",
        ),
        (
            "postgres-wrong-password",
            "(credentials refused: check the user and password in HEYSH_DATABASE_URL)",
        ),
        (
            "postgres-sslmode-disable",
            "(TLS required: the server requires TLS: set "
            "sslmode=verify-full and sslrootcert in HEYSH_DATABASE_URL)",
        ),
        ("neo4j-wrong-ca", "(TLS failed: check HEYSH_TLS_CA_FILE"),
        (
            "neo4j-wrong-password",
            "(credentials refused: check HEYSH_NEO4J_USER and HEYSH_NEO4J_PASSWORD)",
        ),
        (
            "neo4j-plain-bolt",
            "(handshake refused: if the server requires TLS, use neo4j+s:// "
            "or bolt+s:// in HEYSH_NEO4J_URI)",
        ),
    ],
)
def test_misconfigured_client_stops_api_start_up_naming_the_setting_and_no_secret(
    secure_stack: LocalStack, other_ca: Path, tmp_path: Path, case: str, expected: str
) -> None:
    backend = case.split("-")[0]
    result = subprocess.run(
        [sys.executable, "-m", "heysh", "api"],
        env=misconfigured(secure_stack, other_ca, case),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,  # the check gives up after 10 s; a process that serves anyway is a failure
        check=False,
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"heysh api: cannot reach {backend} at 127.0.0.1:") or (
        last_line.startswith(f"heysh api: cannot reach {backend} at bolt")
    )
    assert expected in last_line
    other = "neo4j" if backend == "postgres" else "postgres"
    assert f"{other} at" not in last_line  # only the misconfigured one is named
    assert "Traceback" not in result.stderr
    output = result.stderr + result.stdout
    for secret in [*passwords(secure_stack), WRONG_PASSWORD]:
        assert secret not in output
