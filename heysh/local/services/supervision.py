"""What every local service shares: a foreground child process that we own, started, awaited
until ready, and stopped.

Every service runs in the foreground (never daemonised) in its own session, so we hold its pid, can
signal its whole process group, and a Ctrl-C in the terminal reaches us rather than the children.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import pwd
import shlex
import signal
import stat
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

_PR_SET_PDEATHSIG = 1
# Loaded up front: the forked child (preexec_fn) must not import or dlopen anything.
_LIBC = ctypes.CDLL(None, use_errno=True)
_POLL_SECONDS = 0.25


class ServiceError(RuntimeError):
    """A local service failed; the message carries the tail of its log."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def _die_with_parent(parent_pid: int, sig: signal.Signals) -> None:
    """Runs in the child between fork and exec: send it ``sig`` when its parent dies, even by
    SIGKILL, so no service outlives us.

    The kernel fires this when the *thread* that forked exits, hence Popen only from the caller's
    thread. Credential changes clear the setting, so it must come after them; CPython applies
    Popen's user/group before calling preexec_fn.
    """
    if _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pgid, sig)


def _short(arg: str) -> str:
    # A Java classpath is ~20 kB; in the log header it would crowd out the lines that matter.
    return arg if len(arg) <= 200 else f"<{len(arg)} chars>"


def unsearchable_ancestor(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory above ``path`` that ``user`` (primary group only) cannot traverse."""
    for directory in reversed(path.resolve().parents):
        if not directory.exists():
            break  # the rest is ours to create (0755 under the usual umask)
        mode = directory.stat()
        if mode.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif mode.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not mode.st_mode & bit:
            return directory
    return None


# eq=False: a service is one process, equal only to itself; repr=False: a Neo4j classpath is ~20 kB.
@dataclass(eq=False, repr=False)
class LocalService(ABC):
    """One service process. Subclasses say how to prepare, run and probe it.

    Subclasses are dataclasses of what they run from (directories, ports, binaries), each with a
    keyword-only ``log_path`` from here; the fields below ``log_path`` are this run's state.
    """

    name: ClassVar[str]
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM  # also sent if we die without stopping

    log_path: Path = field(kw_only=True)
    ready_seconds: float | None = field(default=None, init=False)  # start() to ready, for reporting
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log_offset: int = field(default=0, init=False)
    _started_at: float = field(default=0.0, init=False)
    _stopping: bool = field(default=False, init=False)

    # --- what subclasses provide ---------------------------------------------------------------

    @property
    @abstractmethod
    def ports(self) -> dict[str, int]:
        """Every TCP port the service listens on, by purpose."""

    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def probe(self) -> None:
        """One readiness attempt: return when the service answers a real request, else raise."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Create directories, configuration and initial data before the process starts."""

    def environment(self) -> dict[str, str] | None:
        return None  # inherit ours

    def run_as(self) -> pwd.struct_passwd | None:
        return None  # the current user

    def after_ready(self) -> None:  # noqa: B027 - optional hook
        """Idempotent set-up that needs the running service."""

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch the process; call from the thread that will outlive it (see _die_with_parent)."""
        if self.running:
            raise ServiceError(self.name, "already running")
        self._stopping = False
        self.ready_seconds = None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._started_at = time.monotonic()
        self.prepare()
        cmd = self.command()
        user = self.run_as()
        with open(self.log_path, "ab") as log:
            log.write(f"--- heysh: starting {shlex.join(map(_short, cmd))}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.environment(),
                    start_new_session=True,
                    preexec_fn=functools.partial(_die_with_parent, os.getpid(), self.stop_signal),
                    user=None if user is None else user.pw_uid,
                    group=None if user is None else user.pw_gid,
                    extra_groups=None if user is None else [],
                )
            except OSError as exc:
                raise self.error(f"could not run {cmd[0]}: {exc}") from exc

    def wait_ready(self, timeout: float) -> None:
        """Block until the service answers; fail at once if its process exits first."""
        proc = self._proc
        if proc is None:
            raise ServiceError(self.name, "wait_ready() before start()")
        deadline = time.monotonic() + timeout
        while True:
            if self._stopping:
                raise self.error("stopped while waiting for it to become ready")
            if (code := proc.poll()) is not None:
                raise self.error(f"exited with code {code} before it was ready")
            try:
                self.probe()
                break
            except Exception as exc:  # any failure just means "not yet"
                if time.monotonic() >= deadline:
                    raise self.error(f"not ready after {timeout:.0f}s (last probe: {exc})") from exc
            time.sleep(_POLL_SECONDS)
        try:
            self.after_ready()
        except Exception as exc:
            raise self.error(f"set-up after start failed: {exc}") from exc
        self.ready_seconds = time.monotonic() - self._started_at

    def terminate(self) -> None:
        """Ask the process group to shut down without waiting, so a stack can stop all at once."""
        self._stopping = True
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc.pid, self.stop_signal)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop gracefully, SIGKILL after ``timeout``; safe to call any number of times."""
        self.terminate()
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        # Helpers the leader left behind (e.g. Postgres backends) would keep ports and files busy.
        _signal_group(proc.pid, signal.SIGKILL)
        self._proc = None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines this run wrote to its log (earlier runs' lines are skipped)."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(self._log_offset, size - 64 * 1024))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def error(self, message: str) -> ServiceError:
        return ServiceError(
            self.name, f"{message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def _run_step(self, cmd: list[str], user: pwd.struct_passwd | None = None) -> None:
        """Run a set-up command to completion, its output appended to the service log."""
        with open(self.log_path, "ab") as log:
            log.write(f"--- heysh: running {shlex.join(cmd)}\n".encode())
            log.flush()
            result = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=None if user is None else user.pw_uid,
                group=None if user is None else user.pw_gid,
                extra_groups=None if user is None else [],
                check=False,
            )
        if result.returncode != 0:
            raise self.error(f"{Path(cmd[0]).name} failed with code {result.returncode}")
