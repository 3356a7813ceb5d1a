"""`heysh dev`: the four local services, then worker and api, in the foreground."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx

from heysh.local.stack import LocalStack
from heysh.stores.migrations import apply_migrations

CHILD_STOP_SECONDS = 15.0


def run_dev(root: Path | None = None) -> int:
    started = time.monotonic()
    root = root or Path(os.environ.get("HEYSH_DEV_DIR", Path.cwd() / ".heysh"))
    stop = threading.Event()
    serving = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if not serving.is_set():
            raise KeyboardInterrupt  # interrupts a start-up in progress; finally cleans up
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    stack = LocalStack.for_dev(root)
    children: list[subprocess.Popen[bytes]] = []
    try:
        print(f"heysh dev: starting services under {root} …", flush=True)
        stack.start()
        env = {**os.environ, **stack.settings_env(), "HEYSH_ENV": "dev"}
        applied = apply_migrations(env["HEYSH_DATABASE_URL"])
        print(f"heysh dev: migrations applied: {len(applied)}", flush=True)
        port = env.get("HEYSH_API_PORT", "8000")
        for command in ("worker", "api"):
            children.append(subprocess.Popen([sys.executable, "-m", "heysh", command], env=env))
        url = f"http://127.0.0.1:{port}"
        _wait_ready(f"{url}/readyz", children)
        serving.set()
        elapsed = time.monotonic() - started
        print(
            f"\nheysh dev: ready in {elapsed:.1f}s\n"
            f"  GraphiQL   {url}/graphql\n"
            f"  token      {sys.executable} -m heysh token --user alice\n"
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
    finally:
        _stop_children(children)
        stack.stop()
        print("heysh dev: stopped", flush=True)


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise RuntimeError("api or worker exited during start-up; see the output above")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"api not ready at {url} after {timeout:.0f}s")


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
