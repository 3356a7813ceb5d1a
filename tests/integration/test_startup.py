"""`heysh api` and `heysh worker` refuse to start, in one line, when a backend cannot be reached."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from heysh.local.stack import LocalStack

pytestmark = pytest.mark.integration

BACKENDS = ("postgres", "neo4j", "weaviate", "temporal")
DB_PASSWORD = "s3cr3t-pg-pass-5e1d"  # Postgres trusts local connections: any password works


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound by us but not listening: connecting to it is refused, and no one takes it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def env_with_one_backend_at(stack: LocalStack, backend: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEYSH_")}
    env.update(stack.settings_env())
    env["HEYSH_ENV"] = "test"
    postgres = stack.postgres.port
    db_port = port if backend == "postgres" else postgres
    env["HEYSH_DATABASE_URL"] = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:{db_port}/postgres"
    if backend == "neo4j":
        env["HEYSH_NEO4J_URI"] = f"bolt://127.0.0.1:{port}"
    elif backend == "weaviate":
        env["HEYSH_WEAVIATE_URL"] = f"http://127.0.0.1:{port}"
    elif backend == "temporal":
        env["HEYSH_TEMPORAL_ADDRESS"] = f"127.0.0.1:{port}"
    return env


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("command", ["api", "worker"])
def test_unreachable_backend_stops_start_up_with_one_line_naming_it_and_its_address(
    stack: LocalStack, closed_port: int, command: str, backend: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "heysh", command],
        env=env_with_one_backend_at(stack, backend, closed_port),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,  # the check gives up after 10 s; a process that serves anyway is a failure
        check=False,
    )
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"cannot reach {backend} at " in last_line
    assert f"127.0.0.1:{closed_port}" in last_line
    assert "connection refused" in last_line
    for other in set(BACKENDS) - {backend}:  # the others are up: only the one down is named
        assert f"{other} at" not in last_line
    assert "Traceback" not in result.stderr
    assert DB_PASSWORD not in result.stderr + result.stdout
