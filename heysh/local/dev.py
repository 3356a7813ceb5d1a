"""`heysh dev`: the four local services, then worker and api, in the foreground."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx

from heysh.config import Environment, Settings
from heysh.local.dev_state import (
    SECRET_FILE,
    DevStack,
    clear_state,
    dev_root,
    ensure_jwt_secret,
    write_state,
)
from heysh.local.services import ServiceError
from heysh.local.stack import LocalStack
from heysh.stores.migrations import apply_migrations

CHILD_STOP_SECONDS = 15.0
# Where the dev worker serves its metrics unless HEYSH_WORKER_METRICS_ADDRESS says otherwise.
DEV_WORKER_METRICS_ADDRESS = "127.0.0.1:9464"


class DevStartError(RuntimeError):
    """The api or worker did not come up; the children's own output says why."""


def run_dev(root: Path | None = None) -> int:
    started = time.monotonic()
    root = (root or dev_root()).absolute()
    stop = threading.Event()
    serving = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if not serving.is_set():
            raise KeyboardInterrupt  # interrupts a start-up in progress; finally cleans up
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    # The api and worker read the caller's HEYSH_ variables, in dev mode, with this data dir's
    # own JWT secret: tokens signed with it work here and nowhere else.
    secret = ensure_jwt_secret(root)
    settings = Settings(env=Environment.DEV, supabase_jwt_secret=secret)
    stack = LocalStack.for_dev(root)
    worker_metrics = settings.worker_metrics_address or DEV_WORKER_METRICS_ADDRESS
    children: list[subprocess.Popen[bytes]] = []
    try:
        print(f"heysh dev: starting services under {root} …", flush=True)
        stack.start()
        env = {
            **os.environ,
            **stack.settings_env(),
            "HEYSH_ENV": Environment.DEV.value,
            "HEYSH_SUPABASE_JWT_SECRET": secret,
            "HEYSH_WORKER_METRICS_ADDRESS": worker_metrics,
        }
        applied = apply_migrations(env["HEYSH_DATABASE_URL"])
        print(f"heysh dev: migrations applied: {len(applied)}", flush=True)
        for command in ("worker", "api"):
            children.append(subprocess.Popen([sys.executable, "-m", "heysh", command], env=env))
        url = f"http://127.0.0.1:{settings.api_port}"
        _wait_ready(f"{url}/readyz", children)
        write_state(
            root,
            DevStack(
                pid=os.getpid(),
                api_url=url,
                jwt_secret_file=str(root / SECRET_FILE),
                jwt_issuer=settings.jwt_issuer,
                jwt_audience=settings.jwt_audience,
            ),
        )
        serving.set()
        elapsed = time.monotonic() - started
        print(
            f"\nheysh dev: ready in {elapsed:.1f}s\n"
            f"  GraphiQL   {url}/graphql\n"
            f"  metrics    {url}/metrics (api"
            f"{', with HEYSH_METRICS_TOKEN' if settings.metrics_token else ''})\n"
            f"             http://{worker_metrics}/metrics (worker)\n"
            f"  token      {token_command(root)}\n"
            '             (send it as the header {"Authorization": "Bearer <token>"})\n'
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stop.wait(0.5):
            for child in children:
                if child.poll() is not None:
                    print(
                        f"heysh dev: a child exited with {child.returncode}; stopping", flush=True
                    )
                    return 1
        return 0
    except (ServiceError, DevStartError) as exc:
        print(f"heysh dev: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        clear_state(root, os.getpid())
        _stop_children(children)
        stack.stop()
        print("heysh dev: stopped", flush=True)


def token_command(root: Path) -> str:
    """The `heysh token` command line to print: the README's one when run from the checkout."""
    script = Path(sys.executable).with_name("heysh")
    words = (
        [_shown(script), "token"] if script.exists() else [sys.executable, "-m", "heysh", "token"]
    )
    line = shlex.join([*words, "--user", "alice"])
    if root != (Path.cwd() / ".heysh").absolute():
        line = f"HEYSH_DEV_DIR={shlex.quote(str(root))} {line}"
    return line


def _shown(path: Path) -> str:
    """Relative to the working directory when inside it (`.venv/bin/heysh`), else absolute."""
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        return str(path)
    return str(relative) if relative.parent != Path() else f"./{relative}"


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise DevStartError("api or worker exited during start-up; see the output above")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise DevStartError(f"api not ready at {url} after {timeout:.0f}s")


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
