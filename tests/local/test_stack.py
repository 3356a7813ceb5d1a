"""The local stack against real Postgres, Neo4j, Weaviate and Temporal processes.

One stack is started for the whole module (about 20 s on 2 cores); the last test stops it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from neo4j import GraphDatabase
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

import heysh
from heysh.config import Settings
from heysh.local import install
from heysh.local.install import WEAVIATE_VERSION, ensure_all, ensure_postgres, find_java
from heysh.local.services import Neo4jService, PostgresService, ServiceError
from heysh.local.stack import LocalStack, free_test_ports, port_is_free
from heysh.local.tls import LocalPki, ServerSecurity

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A 0755 temp dir: under root, Postgres runs as `postgres`, which must traverse it."""
    path = Path(tempfile.mkdtemp(prefix="heysh-local-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # pytest's 0700 temp dir on purpose: the stack must place Postgres where it can run.
    stack = LocalStack.for_tests(tmp_path_factory.mktemp("stack"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def scratch() -> Iterator[Path]:
    with scratch_dir() as root:
        yield root


def group_members(leader: int) -> list[int]:
    """Every live process in the group ``leader`` leads (services run in their own session)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == leader:  # field 5 of stat: the process group id
                members.append(int(entry.name))
    return members


def alive(pid: int) -> bool:
    """Running, not a zombie (a container's pid 1 may never reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


# --- each service answers a real request ---------------------------------------------------------


def test_postgres_answers_sql(local_stack: LocalStack) -> None:
    with psycopg.connect(local_stack.settings_env()["HEYSH_DATABASE_URL"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_postgres_has_supabase_roles_as_supabase_defines_them(local_stack: LocalStack) -> None:
    with psycopg.connect(local_stack.postgres.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname, rolcanlogin, rolinherit, rolbypassrls FROM pg_roles "
            "WHERE rolname IN ('anon', 'authenticated', 'service_role') ORDER BY rolname"
        ).fetchall()
        assert rows == [
            ("anon", False, False, False),
            ("authenticated", False, False, False),
            ("service_role", False, False, True),
        ]
        conn.execute("CREATE TABLE public.role_probe (id int)")
        try:
            granted = conn.execute(
                "SELECT has_schema_privilege(r, 'public', 'USAGE'),"
                " has_table_privilege(r, 'public.role_probe', 'SELECT')"
                " FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) AS r"
            ).fetchall()
        finally:
            conn.execute("DROP TABLE public.role_probe")
    assert granted == [(True, True)] * 3


def test_postgres_role_setup_is_idempotent(local_stack: LocalStack) -> None:
    local_stack.postgres.after_ready()
    local_stack.postgres.after_ready()


def test_neo4j_answers_cypher(local_stack: LocalStack) -> None:
    with GraphDatabase.driver(local_stack.settings_env()["HEYSH_NEO4J_URI"], auth=None) as driver:
        records, _, _ = driver.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1


def test_weaviate_is_ready_and_reports_its_version(local_stack: LocalStack) -> None:
    url = local_stack.settings_env()["HEYSH_WEAVIATE_URL"]
    assert httpx.get(f"{url}/v1/.well-known/ready").status_code == 200
    assert httpx.get(f"{url}/v1/meta").json()["version"] == WEAVIATE_VERSION
    grpc = int(local_stack.settings_env()["HEYSH_WEAVIATE_GRPC_PORT"])
    socket.create_connection(("127.0.0.1", grpc), timeout=2).close()


async def test_temporal_describes_the_default_namespace(local_stack: LocalStack) -> None:
    client = await Client.connect(local_stack.settings_env()["HEYSH_TEMPORAL_ADDRESS"])
    response = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    assert response.namespace_info.name == "default"


def test_settings_env_is_what_config_reads(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_stack.settings_env().items():
        monkeypatch.setenv(name, value)
    settings = Settings(env="test")
    assert settings.neo4j_uri == local_stack.neo4j.uri
    assert settings.weaviate_url == local_stack.weaviate.url
    assert settings.weaviate_grpc_port == local_stack.weaviate.grpc_port
    assert settings.temporal_address == local_stack.temporal.address
    assert settings.database_url.get_secret_value() == local_stack.postgres.dsn


def test_every_service_reported_its_time_to_ready(local_stack: LocalStack) -> None:
    assert local_stack.start_seconds is not None
    for service in local_stack.services:
        assert service.ready_seconds is not None, service.name
        assert service.ready_seconds <= local_stack.start_seconds


def test_one_service_can_be_stopped_and_restarted_alone(local_stack: LocalStack) -> None:
    postgres = local_stack.postgres
    postgres.stop()
    assert port_is_free(postgres.port)
    postgres.start()  # same data dir: no initdb this time
    postgres.wait_ready(timeout=60)
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'anon'").fetchone() == (
            1,
        )


# --- failures carry the service's own log --------------------------------------------------------


def test_postgres_on_an_unusable_data_dir_fails_fast_with_its_log(scratch: Path) -> None:
    data = scratch / "postgres" / "data"
    data.mkdir(parents=True)
    # A data dir left by a Postgres version we do not have.
    (data / "PG_VERSION").write_text("9.9\n")
    (data / "postgresql.conf").write_text("")
    service = PostgresService(
        data, free_test_ports().postgres, ensure_postgres(), log_path=scratch / "pg.log"
    )
    service.start()
    started = time.monotonic()
    try:
        with pytest.raises(ServiceError) as caught:
            service.wait_ready(timeout=60)
    finally:
        service.stop()
    assert time.monotonic() - started < 20  # it exited; we did not sit out the timeout
    assert caught.value.name == "postgres"
    assert "exited with code" in str(caught.value)
    assert "not compatible with this version" in str(caught.value)  # from the Postgres log


def test_neo4j_with_a_bogus_classpath_fails_with_its_log(scratch: Path) -> None:
    service = Neo4jService(
        scratch / "neo4j",
        free_test_ports().neo4j_bolt,
        [str(scratch / "no-such-neo4j.jar")],
        java=find_java(),
        log_path=scratch / "neo4j.log",
    )
    service.start()
    try:
        with pytest.raises(ServiceError) as caught:
            service.wait_ready(timeout=60)
    finally:
        service.stop()
    assert caught.value.name == "neo4j"
    assert "org.neo4j.server.CommunityEntryPoint" in str(caught.value)  # java's own complaint


def test_a_busy_port_fails_fast_naming_port_and_service(scratch: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        ports = dataclasses.replace(free_test_ports(), neo4j_bolt=busy)
        stack = LocalStack(scratch, ports, ephemeral=True, installed=ensure_all())
        with pytest.raises(ServiceError) as caught:
            stack.start()
    assert caught.value.name == "neo4j"
    assert f"port {busy}" in str(caught.value)
    assert not any(service.running for service in stack.services)


def test_one_failing_service_stops_the_others_and_raises_its_error(scratch: Path) -> None:
    broken = dataclasses.replace(ensure_all(), neo4j_classpath=[str(scratch / "missing.jar")])
    stack = LocalStack(scratch, free_test_ports(), ephemeral=True, installed=broken)
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        stack.start(timeout=120)
    assert time.monotonic() - started < 60  # failed at Neo4j's exit, not at the timeout
    assert caught.value.name == "neo4j"
    assert "CommunityEntryPoint" in str(caught.value)
    assert not any(service.running for service in stack.services)
    assert all(port_is_free(port) for s in stack.services for port in s.ports.values())


def test_children_die_with_a_killed_parent(scratch: Path) -> None:
    # Postgres covers the root -> `postgres` user switch, after which pdeathsig must still hold.
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from heysh.local.install import ensure_postgres
        from heysh.local.services import PostgresService
        root = Path({str(scratch)!r})
        pg = PostgresService(root / "pg" / "data", {free_test_ports().postgres},
                             ensure_postgres(), log_path=root / "pg.log", ephemeral=True)
        pg.start()
        pg.wait_ready(60)
        print(pg.pid, flush=True)
        time.sleep(600)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(heysh.__file__).parents[1])}
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert parent.stdout is not None
        leader = int(parent.stdout.readline())
        members = group_members(leader)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert leader in members
    assert wait_until_gone(members, timeout=15) == []


# --- installers: cached by version, never half-built (fake go/mvn, so these take no time) -------


def fake_tool(bin_dir: Path, name: str, body: str) -> Path:
    calls = bin_dir / f"{name}.calls"
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n{body}\n')
    tool.chmod(0o755)
    return calls


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HEYSH_CACHE_DIR", str(tmp_path / "cache"))
    return bin_dir


def test_weaviate_build_is_cached_and_a_failed_build_leaves_nothing(fake_bin: Path) -> None:
    build = 'printf "#!/bin/sh\\n" > "$GOBIN/weaviate-server"; chmod +x "$GOBIN/weaviate-server"'
    calls = fake_tool(fake_bin, "go", build)
    built = install.ensure_weaviate()
    assert built == install.cache_root() / f"weaviate-{WEAVIATE_VERSION}/bin/weaviate-server"
    assert install.ensure_weaviate() == built
    assert len(calls.read_text().splitlines()) == 1  # the second call found the cache
    assert sorted(p.name for p in built.parent.parent.iterdir()) == ["bin", "build.log"]

    built.unlink()
    fake_tool(fake_bin, "go", 'echo "no network" >&2; touch "$GOBIN/weaviate-server"; exit 1')
    with pytest.raises(install.InstallError, match="no network"):
        install.ensure_weaviate()
    assert not built.exists()  # the half-built binary never reached the cache
    assert sorted(p.name for p in built.parent.parent.iterdir()) == ["bin", "build.log"]


def test_neo4j_classpath_is_cached_until_a_jar_disappears(fake_bin: Path) -> None:
    jar = fake_bin / "neo4j.jar"
    jar.write_text("")
    write = f'for a in "$@"; do case "$a" in -Dmdep.outputFile=*) printf {jar} > "${{a#*=}}";; esac'
    write += "; done"
    calls = fake_tool(fake_bin, "mvn", write)
    assert install.ensure_neo4j() == [str(jar)]
    assert install.ensure_neo4j() == [str(jar)]
    assert len(calls.read_text().splitlines()) == 1
    jar.unlink()  # e.g. ~/.m2 was cleaned: resolve again
    with pytest.raises(install.InstallError, match="missing jars"):
        install.ensure_neo4j()
    assert len(calls.read_text().splitlines()) == 2


# --- last: stopping the module's stack -----------------------------------------------------------


def test_stop_releases_every_port_and_leaves_no_process(local_stack: LocalStack) -> None:
    processes = [pid for s in local_stack.services for pid in group_members(s.pid or -1)]
    ports = [port for s in local_stack.services for port in s.ports.values()]
    assert len(processes) >= 4
    local_stack.stop()
    local_stack.stop()  # idempotent
    assert wait_until_gone(processes, timeout=5) == []
    assert [port for port in ports if not port_is_free(port)] == []
    assert not any(service.running for service in local_stack.services)


def test_a_secure_neo4j_takes_a_password_that_begins_with_a_dash(scratch: Path) -> None:
    # token_urlsafe makes one in 64 passwords so; neo4j-admin once read it as an option.
    password = "-" + secrets.token_urlsafe(24)
    installed = ensure_all()
    service = Neo4jService(
        scratch / "neo4j",
        free_test_ports().neo4j_bolt,
        installed.neo4j_classpath,
        java=installed.java,
        log_path=scratch / "neo4j.log",
        ephemeral=True,
        security=ServerSecurity(LocalPki(scratch / "pki").ensure(), password),
    )
    service.start()
    try:
        service.wait_ready(timeout=120)  # its probe logs in with the password over TLS
    finally:
        service.stop()
