"""`make dev` end to end: `heysh dev` comes up, its printed token command works, createDomain
reaches ACTIVE, and SIGTERM stops everything it started.

It needs the dev stack's fixed ports (the test stack uses free ones), so it refuses at once,
naming them, when something holds them, e.g. a `make dev` running on this machine.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from heysh.config import RETIRED_DEV_JWT_SECRET
from heysh.local.dev_state import SECRET_FILE, STATE_FILE
from heysh.local.stack import DEV_PORTS, port_is_free
from tests.support.live_api import free_port

pytestmark = pytest.mark.integration

CHECKOUT = Path(__file__).resolve().parents[2]
READY_WITHIN = 240.0
STOP_WITHIN = 60.0

CREATE_DOMAIN = """mutation { createDomain(input: {name: "Marine biology"}) {
  ... on CreateDomainSuccess { domain { id status } run { id status stage } }
  ... on UserError { code field message } } }"""
DOMAIN_STATUS = "query ($id: ID!) { domain(id: $id) { status } }"


def dev_ports() -> dict[str, int]:
    ports = {f.name: getattr(DEV_PORTS, f.name) for f in dataclasses.fields(DEV_PORTS)}
    # Weaviate also binds the port after its gossip and Raft ports.
    ports["weaviate_data"] = DEV_PORTS.weaviate_gossip + 1
    ports["weaviate_raft_rpc"] = DEV_PORTS.weaviate_raft + 1
    return {name: port for name, port in ports.items() if port is not None}


def without_heysh_variables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HEYSH_")}


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: ppid is the 4th field of stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in found:
                found.add(child)
                queue.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def dev_dir() -> Iterator[Path]:
    # 0755: as root, the dev stack runs Postgres as `postgres`, which must traverse the path.
    path = Path(tempfile.mkdtemp(prefix="heysh-dev-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_for_ready(dev: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        output = log.read_text(errors="replace")
        if "Ctrl-C stops everything." in output:
            return output
        if dev.poll() is not None:
            pytest.fail(f"heysh dev exited with {dev.returncode} before ready:\n{output[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"heysh dev not ready after {READY_WITHIN:.0f}s:\n{log.read_text()[-4000:]}")


def graphql(api: str, query: str, token: str, variables: dict[str, Any] | None = None) -> Any:
    response = httpx.post(
        f"{api}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=30,
    )
    return response.json()


@pytest.mark.timeout(600)
def test_heysh_dev_serves_a_token_from_its_printed_command_and_stops_cleanly(
    dev_dir: Path, tmp_path: Path
) -> None:
    busy = {name: port for name, port in dev_ports().items() if not port_is_free(port)}
    if busy:
        pytest.fail(
            f"the dev stack's fixed ports are in use on 127.0.0.1 ({busy}); is `make dev` "
            "running? This test starts its own and needs them free."
        )
    api_port = free_port()
    log = tmp_path / "heysh-dev.log"
    script = Path(sys.executable).with_name("heysh")
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [str(script), "dev"],
            cwd=CHECKOUT,
            env={
                **without_heysh_variables(),
                "HEYSH_DEV_DIR": str(dev_dir),
                "HEYSH_API_PORT": str(api_port),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so a failed test can stop all of it
        )
    try:
        output = wait_for_ready(dev, log)
        api = f"http://127.0.0.1:{api_port}"
        assert f"GraphiQL   {api}/graphql" in output

        # The token command, exactly as printed, from the checkout, with nothing exported.
        printed = re.search(r"^\s+token\s+(.+)$", output, re.MULTILINE)
        assert printed is not None, output
        command = printed.group(1)
        assert command == f"HEYSH_DEV_DIR={dev_dir} .venv/bin/heysh token --user alice"
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=CHECKOUT,
            env=without_heysh_variables(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        token = result.stdout.strip()

        created = graphql(api, CREATE_DOMAIN, token)
        domain = created["data"]["createDomain"]["domain"]
        deadline = time.monotonic() + 90
        status = domain["status"]
        while status != "ACTIVE" and time.monotonic() < deadline:
            time.sleep(0.5)
            status = graphql(api, DOMAIN_STATUS, token, {"id": domain["id"]})["data"]["domain"][
                "status"
            ]
        assert status == "ACTIVE"

        # The secret once committed to the repository opens nothing.
        claims = jwt.decode(token, options={"verify_signature": False})
        forged = jwt.encode(claims, RETIRED_DEV_JWT_SECRET, algorithm="HS256")
        refused = graphql(api, DOMAIN_STATUS, forged, {"id": domain["id"]})
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        secret_file = dev_dir / SECRET_FILE
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert secret_file.read_text().strip() not in output

        started = descendants(dev.pid)
        assert len(started) >= 6, started  # four services, worker and api at least
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(STOP_WITHIN) == 0
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
    output = log.read_text()
    assert output.rstrip().endswith("heysh dev: stopped"), output[-4000:]
    assert [pid for pid in started if alive(pid)] == []
    assert not (dev_dir / STATE_FILE).exists()
    assert secret_file.exists()  # kept: tokens survive the next `make dev`
