"""The local services as foreground child processes that we own: start, wait until ready, stop.

Every service runs in the foreground (never daemonised) in its own session, so we hold its pid, can
signal its whole process group, and a Ctrl-C in the terminal reaches us rather than the children.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import pwd
import shlex
import signal
import socket
import stat
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path

from heysh.local.install import NEO4J_MAIN_CLASS

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


class LocalService(ABC):
    """One service process. Subclasses say how to prepare, run and probe it."""

    stop_signal = signal.SIGTERM  # graceful shutdown; also sent if we die without stopping it

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.ready_seconds: float | None = None  # start() to ready, for reporting
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._started_at = 0.0
        self._stopping = False

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


# --- Postgres ----------------------------------------------------------------------------------

# Supabase's API roles, created as Supabase's own init script does, so row level security can be
# tested locally exactly as it behaves on a hosted project.
_SUPABASE_ROLES_SQL = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
""" + "".join(
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON {kind} TO anon, authenticated, "
    "service_role;\n"
    for kind in ("TABLES", "FUNCTIONS", "SEQUENCES")
)


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


class PostgresService(LocalService):
    # SIGINT is Postgres's "fast" shutdown; SIGTERM is "smart" and would wait for clients to leave,
    # e.g. forever for a dev api process that outlived a killed `heysh dev`.
    stop_signal = signal.SIGINT

    def __init__(
        self, data_dir: Path, port: int, bin_dir: Path, *, log_path: Path, ephemeral: bool = False
    ) -> None:
        super().__init__("postgres", log_path)
        self.data_dir = data_dir
        self.socket_dir = data_dir.parent / "socket"
        self.port = port
        self.bin_dir = bin_dir
        self.ephemeral = ephemeral

    @property
    def ports(self) -> dict[str, int]:
        return {"postgres": self.port}

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run_as(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:  # Postgres refuses to run as root
            return pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceError(self.name, "running as root needs a `postgres` OS user") from None

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # Postgres refuses a data dir others can read
        if (user := self.run_as()) is not None:
            self.data_dir.parent.chmod(0o755)
            if (blocked := unsearchable_ancestor(self.data_dir, user)) is not None:
                raise ServiceError(
                    self.name,
                    f"{blocked} is not searchable by the `postgres` OS user, which Postgres runs "
                    "as under root; put the data elsewhere or `chmod o+x` it",
                )
            for directory in (self.data_dir, self.socket_dir):
                os.chown(directory, user.pw_uid, user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust"]
            self._run_step([*initdb, "-U", "postgres", "--encoding=UTF8", "--no-locale"], user)

    def command(self) -> list[str]:
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        cmd += ["-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1"]
        if self.ephemeral:  # test data is thrown away, so durability only costs time
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        return cmd

    def probe(self) -> None:
        import psycopg  # imported on use: the clients cost ~4 s to import, services none of it

        isready = [str(self.bin_dir / "pg_isready"), "-q", "-t", "2", "-h", "127.0.0.1"]
        # Named user: by default it logs in as the OS user ("role root does not exist").
        isready += ["-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        if subprocess.run(isready, check=False).returncode != 0:
            raise ConnectionError("pg_isready: not accepting connections")
        with psycopg.connect(self.dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")

    def after_ready(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(_SUPABASE_ROLES_SQL)


# --- Neo4j -------------------------------------------------------------------------------------

# A subset of what Neo4j's own launcher passes; without the --add-opens its page cache falls back
# to a slower mode and says so in the log.
_NEO4J_JVM_FLAGS = [
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
]


class Neo4jService(LocalService):
    def __init__(
        self,
        home_dir: Path,
        bolt_port: int,
        classpath: list[str],
        *,
        java: Path,
        log_path: Path,
        ephemeral: bool = False,
    ) -> None:
        super().__init__("neo4j", log_path)
        self.home_dir = home_dir
        self.bolt_port = bolt_port
        self.classpath = classpath
        self.java = java
        self.ephemeral = ephemeral

    @property
    def ports(self) -> dict[str, int]:
        return {"bolt": self.bolt_port}

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def prepare(self) -> None:
        conf_dir = self.home_dir / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        address = f"127.0.0.1:{self.bolt_port}"
        settings = {
            "server.default_listen_address": "127.0.0.1",
            "server.bolt.listen_address": address,
            "server.bolt.advertised_address": address,
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "false",  # local only; production uses Aura credentials
            "server.directories.data": str(self.home_dir / "data"),
            "server.directories.logs": str(self.home_dir / "logs"),
            "server.memory.pagecache.size": "128m",
            "dbms.usage_report.enabled": "false",  # no phoning home from dev machines or CI
            # Bolt's network threads otherwise idle 2 x 5 s after the databases have already
            # stopped and checkpointed, making every stop take over 10 s.
            "internal.dbms.bolt.netty_server_shutdown_quiet_period": "0",
            "internal.dbms.bolt.netty_server_shutdown_timeout": "2",
        }
        if self.ephemeral:  # test data is thrown away: skip zero-filling new log files
            settings["db.tx_log.preallocate"] = "false"
        text = "".join(f"{key}={value}\n" for key, value in settings.items())
        (conf_dir / "neo4j.conf").write_text("# written by heysh on every start\n" + text)

    def command(self) -> list[str]:
        return [
            str(self.java),
            *_NEO4J_JVM_FLAGS,
            "-cp",
            os.pathsep.join(self.classpath),
            NEO4J_MAIN_CLASS,
            f"--home-dir={self.home_dir}",
            f"--config-dir={self.home_dir / 'conf'}",
            "--console-mode",  # log to stdout (our log file) instead of only logs/neo4j.log
        ]

    def probe(self) -> None:
        from neo4j import GraphDatabase

        driver = GraphDatabase.driver(
            self.uri, auth=None, connection_timeout=2.0, connection_acquisition_timeout=3.0
        )
        # An auto-commit session.run, unlike execute_query, has no driver-side retry loop.
        with driver, driver.session() as session:
            record = session.run("RETURN 1 AS one").single(strict=True)
            if record["one"] != 1:
                raise ConnectionError("unexpected answer to RETURN 1")


# --- Weaviate ----------------------------------------------------------------------------------


class WeaviateService(LocalService):
    def __init__(
        self,
        data_dir: Path,
        binary: Path,
        *,
        http_port: int,
        grpc_port: int,
        gossip_port: int,
        raft_port: int,
        log_path: Path,
    ) -> None:
        super().__init__("weaviate", log_path)
        self.data_dir = data_dir
        self.binary = binary
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.gossip_port = gossip_port
        self.raft_port = raft_port

    @property
    def ports(self) -> dict[str, int]:
        # memberlist may use gossip+1 for data whatever it is told, so both +1 ports are reserved.
        return {
            "http": self.http_port,
            "grpc": self.grpc_port,
            "gossip": self.gossip_port,
            "data": self.gossip_port + 1,
            "raft": self.raft_port,
            "raft-rpc": self.raft_port + 1,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.http_port),
            "--scheme",
            "http",
        ]

    def environment(self) -> dict[str, str]:
        # A clean environment: a developer's stray Weaviate/OpenAI variables must not change it.
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
            "PERSISTENCE_DATA_PATH": str(self.data_dir),
            "DEFAULT_VECTORIZER_MODULE": "none",
            "ENABLE_MODULES": "",
            "CLUSTER_HOSTNAME": "node1",
            "CLUSTER_IN_LOCALHOST": "true",
            # Without these, gossip binds every interface and Raft the host's public address.
            "CLUSTER_BIND_ADDR": "127.0.0.1",
            "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
            "CLUSTER_GOSSIP_BIND_PORT": str(self.gossip_port),
            "CLUSTER_DATA_BIND_PORT": str(self.gossip_port + 1),
            "RAFT_BOOTSTRAP_EXPECT": "1",
            "RAFT_JOIN": f"node1:{self.raft_port}",
            "RAFT_PORT": str(self.raft_port),
            "RAFT_INTERNAL_RPC_PORT": str(self.raft_port + 1),
            "GRPC_PORT": str(self.grpc_port),
            "DISABLE_TELEMETRY": "true",
            "GO_PROFILING_DISABLE": "true",  # else pprof takes *:6060, clashing dev with tests
            "LOG_LEVEL": "warning",
        }

    def probe(self) -> None:
        import httpx

        response = httpx.get(f"{self.url}/v1/.well-known/ready", timeout=2.0)
        if response.status_code != 200:
            raise ConnectionError(f"ready endpoint answered {response.status_code}")
        socket.create_connection(("127.0.0.1", self.grpc_port), timeout=2.0).close()


# --- Temporal ----------------------------------------------------------------------------------


class TemporalService(LocalService):
    def __init__(
        self,
        port: int,
        http_port: int,
        metrics_port: int,
        *,
        binary: Path,
        log_path: Path,
        ui_port: int | None = None,
        db_file: Path | None = None,
    ) -> None:
        super().__init__("temporal", log_path)
        self.port = port
        self.http_port = http_port
        self.metrics_port = metrics_port
        self.ui_port = ui_port
        self.db_file = db_file  # None: in memory, gone when the process ends
        self.binary = binary

    @property
    def ports(self) -> dict[str, int]:
        ports = {"grpc": self.port, "http": self.http_port, "metrics": self.metrics_port}
        return ports if self.ui_port is None else {**ports, "ui": self.ui_port}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def prepare(self) -> None:
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        cmd = [str(self.binary), "server", "start-dev", "--ip", "127.0.0.1", "--log-level", "warn"]
        cmd += ["--port", str(self.port), "--http-port", str(self.http_port)]
        cmd += ["--metrics-port", str(self.metrics_port)]
        if self.ui_port is None:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        if self.db_file is not None:
            cmd += ["--db-filename", str(self.db_file)]
        return cmd

    def probe(self) -> None:
        # Runs in a readiness thread, which has no event loop of its own.
        asyncio.run(asyncio.wait_for(self._describe_default_namespace(), timeout=5.0))

    async def _describe_default_namespace(self) -> None:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client

        client = await Client.connect(self.address)
        request = DescribeNamespaceRequest(namespace="default")
        await client.workflow_service.describe_namespace(request)
