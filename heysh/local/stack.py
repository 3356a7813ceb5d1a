"""The four local services as one unit: `heysh dev` (fixed ports, kept data) and tests (free ports).

Processes are launched from the calling thread (their parent-death signal is tied to it) and then
awaited side by side, so the stack is ready as soon as its slowest service (Neo4j, ~12 s) is.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

from heysh.config import Settings
from heysh.local.install import Installed, ensure_all
from heysh.local.services import (
    LocalService,
    Neo4jService,
    PostgresService,
    ServiceError,
    TemporalService,
    TlsProxyService,
    TlsRoute,
    WeaviateService,
    unsearchable_ancestor,
)
from heysh.local.services.neo4j import NEO4J_USER, bolt_uri
from heysh.local.services.postgres import postgres_dsn
from heysh.local.tls import LocalPki, ServerSecurity, write_owner_only

S = TypeVar("S", bound=LocalService)
# The secure profile's credentials, one per service (passwords, and API keys for Weaviate/Temporal).
_CREDENTIALS = ("postgres", "neo4j", "weaviate", "temporal")


@dataclass(frozen=True)
class StackPorts:
    postgres: int
    neo4j_bolt: int
    weaviate_http: int
    weaviate_grpc: int
    weaviate_gossip: int  # gossip+1 is Weaviate's data port
    weaviate_raft: int  # raft+1 is its internal RPC port
    temporal: int
    temporal_http: int
    temporal_metrics: int
    temporal_ui: int | None = None
    # The secure profile: Weaviate and Temporal listen here in plain text, and the TLS proxy on
    # the ports above, which are the ones clients use.
    behind_proxy: ProxiedPorts | None = None


@dataclass(frozen=True)
class ProxiedPorts:
    weaviate_http: int
    weaviate_grpc: int
    temporal: int


DEV_PORTS = StackPorts(
    postgres=54329,
    neo4j_bolt=7687,
    weaviate_http=8080,
    weaviate_grpc=50051,
    weaviate_gossip=7946,
    weaviate_raft=8300,
    temporal=7233,
    temporal_http=7243,
    temporal_metrics=7244,
)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (SO_REUSEADDR, as servers set it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_test_ports() -> StackPorts:
    """Ports the kernel calls free right now; Weaviate's cluster ports come in +1 pairs."""
    held: list[socket.socket] = []  # kept bound until all are chosen, so none is handed out twice

    def bind(port: int) -> int:
        sock = socket.socket()
        held.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return int(sock.getsockname()[1])

    def pair() -> int:
        while True:
            first = bind(0)
            with contextlib.suppress(OSError, OverflowError):  # first + 1 taken or > 65535
                bind(first + 1)
                return first

    try:
        return StackPorts(
            postgres=bind(0),
            neo4j_bolt=bind(0),
            weaviate_http=bind(0),
            weaviate_grpc=bind(0),
            weaviate_gossip=pair(),
            weaviate_raft=pair(),
            temporal=bind(0),
            temporal_http=bind(0),
            temporal_metrics=bind(0),
            behind_proxy=ProxiedPorts(bind(0), bind(0), bind(0)),
        )
    finally:
        for sock in held:
            sock.close()


class _Service(Generic[S]):
    """A stack's service of kind ``S``, read like a property; it exists once start() built it."""

    def __init__(self, kind: type[S]) -> None:
        self._kind = kind

    @overload
    def __get__(self, stack: None, owner: type[LocalStack]) -> Self: ...

    @overload
    def __get__(self, stack: LocalStack, owner: type[LocalStack]) -> S: ...

    def __get__(self, stack: LocalStack | None, owner: type[LocalStack]) -> S | Self:
        if stack is None:  # read on the class, as a property would return itself
            return self
        for service in stack.services:
            if isinstance(service, self._kind):
                return service
        raise RuntimeError("the stack has not been started")


class LocalStack:
    """Postgres, Neo4j, Weaviate and Temporal under one root directory.

    ``secure``: the production-like profile. Every store takes only TLS connections (certificates
    from a throwaway CA under ``root/secure``) with credentials: Postgres and Neo4j a password
    each, and Weaviate and Temporal an API key each, behind the TLS proxy (Caddy), because
    neither serves TLS itself. The settings verify every server against that CA.
    """

    def __init__(
        self,
        root: Path,
        ports: StackPorts,
        *,
        ephemeral: bool,
        installed: Installed | None = None,
        secure: bool = False,
    ) -> None:
        self.root = root
        self.ports = ports
        self.ephemeral = ephemeral
        self.secure = secure
        self.start_seconds: float | None = None
        self._installed = installed
        self._services: list[LocalService] = []
        self._scratch: Path | None = None  # a directory of ours outside root, removed on stop

    @classmethod
    def for_dev(cls, root: Path) -> LocalStack:
        """`heysh dev`: data kept under ``root`` (the checkout's ``.heysh/``), well-known ports."""
        return cls(root, DEV_PORTS, ephemeral=False)

    @classmethod
    def for_tests(cls, root: Path, *, secure: bool = False) -> LocalStack:
        """Tests: free ports, throwaway data under ``root``, Temporal in memory."""
        return cls(root, free_test_ports(), ephemeral=True, secure=secure)

    # --- the secure profile's CA and passwords, made on first use and kept with the data --------

    @property
    def pki(self) -> LocalPki:
        return LocalPki(self.root / "secure")

    def passwords(self) -> dict[str, str]:
        """The services' passwords and API keys by service name (0600 JSON beside the CA), each
        made once."""
        path = self.pki.directory / "passwords.json"
        known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [name for name in _CREDENTIALS if name not in known]
        if missing:
            known |= {name: secrets.token_urlsafe(24) for name in missing}
            self.pki.directory.mkdir(parents=True, exist_ok=True)
            self.pki.directory.chmod(0o700)
            write_owner_only(path, json.dumps(known).encode())
        return known

    # --- the services, once start() has built them ---------------------------------------------

    postgres = _Service(PostgresService)
    neo4j = _Service(Neo4jService)
    weaviate = _Service(WeaviateService)
    temporal = _Service(TemporalService)
    tls_proxy = _Service(TlsProxyService)  # the secure profile only

    @property
    def services(self) -> list[LocalService]:
        return list(self._services)

    def settings_env(self) -> dict[str, str]:
        """The variables that point heysh.config.Settings at this stack (secrets included)."""
        p = self.ports
        env = {
            "HEYSH_TEMPORAL_ADDRESS": f"127.0.0.1:{p.temporal}",
            "HEYSH_NEO4J_URI": f"bolt://127.0.0.1:{p.neo4j_bolt}",
            "HEYSH_WEAVIATE_URL": f"http://127.0.0.1:{p.weaviate_http}",
            "HEYSH_WEAVIATE_GRPC_PORT": str(p.weaviate_grpc),
            "HEYSH_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{p.postgres}/postgres",
        }
        if self.secure:
            # The same strings the services' own probes use, so tests and services agree.
            passwords = self.passwords()
            env |= {
                "HEYSH_TLS_CA_FILE": str(self.pki.ca_file),
                "HEYSH_NEO4J_URI": bolt_uri(p.neo4j_bolt, secure=True),
                "HEYSH_NEO4J_USER": NEO4J_USER,
                "HEYSH_NEO4J_PASSWORD": passwords["neo4j"],
                "HEYSH_DATABASE_URL": postgres_dsn(
                    p.postgres, password=passwords["postgres"], ca_file=self.pki.ca_file
                ),
                "HEYSH_WEAVIATE_URL": f"https://127.0.0.1:{p.weaviate_http}",
                "HEYSH_WEAVIATE_API_KEY": passwords["weaviate"],
                # An API key turns TLS on (HEYSH_TEMPORAL_TLS unset), as for Temporal Cloud.
                "HEYSH_TEMPORAL_API_KEY": passwords["temporal"],
            }
        return env

    def test_settings(self, **overrides: Any) -> Settings:
        """Settings of a test or benchmark process on this stack (``env`` test)."""
        env = self.settings_env()
        values: dict[str, Any] = {
            "env": "test",
            "temporal_address": env["HEYSH_TEMPORAL_ADDRESS"],
            "neo4j_uri": env["HEYSH_NEO4J_URI"],
            "weaviate_url": env["HEYSH_WEAVIATE_URL"],
            "weaviate_grpc_port": int(env["HEYSH_WEAVIATE_GRPC_PORT"]),
            "database_url": env["HEYSH_DATABASE_URL"],
        }
        if self.secure:
            values |= {
                "tls_ca_file": env["HEYSH_TLS_CA_FILE"],
                "neo4j_user": env["HEYSH_NEO4J_USER"],
                "neo4j_password": env["HEYSH_NEO4J_PASSWORD"],
                "weaviate_api_key": env["HEYSH_WEAVIATE_API_KEY"],
                "temporal_api_key": env["HEYSH_TEMPORAL_API_KEY"],
            }
        return Settings(**{**values, **overrides})

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        """Obtain, launch and await all four; on any failure stop them all and re-raise."""
        if any(service.running for service in self._services):
            raise RuntimeError("the stack is already running")
        began = time.monotonic()
        installed = self._installed or ensure_all()
        self._services = self._build(installed)
        atexit.register(self.stop)  # Ctrl-C or a converted SIGTERM must not leave orphans
        try:
            self._refuse_busy_ports()
            for service in self._services:
                service.start()
            self._wait_all(timeout - (time.monotonic() - began))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop every service that was started; idempotent and safe after a partial start."""
        for service in self._services:
            service.terminate()  # all at once, so shutdowns overlap
        for service in self._services:
            service.stop()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- helpers ---------------------------------------------------------------------------------

    def _build(self, installed: Installed) -> list[LocalService]:
        logs, p = self.root / "logs", self.ports
        # Where Weaviate and Temporal listen: behind the TLS proxy in the secure profile.
        inner = self._proxied_ports() if self.secure else None
        credentials = self.passwords() if self.secure else {}

        def security(service: str) -> ServerSecurity | None:
            return ServerSecurity(self.pki.ensure(), credentials[service]) if self.secure else None

        services: list[LocalService] = [
            PostgresService(
                self._postgres_dir() / "data",
                p.postgres,
                installed.postgres_bin,
                log_path=logs / "postgres.log",
                ephemeral=self.ephemeral,
                security=security("postgres"),
            ),
            Neo4jService(
                self.root / "neo4j",
                p.neo4j_bolt,
                installed.neo4j_classpath,
                java=installed.java,
                log_path=logs / "neo4j.log",
                ephemeral=self.ephemeral,
                security=security("neo4j"),
            ),
            WeaviateService(
                self.root / "weaviate" / "data",
                installed.weaviate,
                http_port=p.weaviate_http if inner is None else inner.weaviate_http,
                grpc_port=p.weaviate_grpc if inner is None else inner.weaviate_grpc,
                gossip_port=p.weaviate_gossip,
                raft_port=p.weaviate_raft,
                api_key=credentials.get("weaviate"),
                log_path=logs / "weaviate.log",
            ),
            TemporalService(
                p.temporal if inner is None else inner.temporal,
                p.temporal_http,
                p.temporal_metrics,
                binary=installed.temporal,
                log_path=logs / "temporal.log",
                ui_port=p.temporal_ui,
                db_file=None if self.ephemeral else self.root / "temporal" / "temporal.db",
            ),
        ]
        if inner is not None:
            routes = [
                TlsRoute("weaviate-https", p.weaviate_http, inner.weaviate_http),
                TlsRoute("weaviate-grpc", p.weaviate_grpc, inner.weaviate_grpc, grpc=True),
                TlsRoute(
                    "temporal",
                    p.temporal,
                    inner.temporal,
                    grpc=True,
                    api_key=credentials["temporal"],
                ),
            ]
            services.append(
                TlsProxyService(
                    self.pki.directory / "proxy",
                    installed.caddy,
                    routes,
                    pki=self.pki.ensure(),
                    log_path=logs / "tls-proxy.log",
                )
            )
        return services

    def _proxied_ports(self) -> ProxiedPorts:
        if self.ports.behind_proxy is None:
            raise ServiceError("tls-proxy", "the secure profile needs ports behind the proxy")
        return self.ports.behind_proxy

    def _postgres_dir(self) -> Path:
        """Under root, unless tests run as root in a dir the `postgres` user cannot traverse.

        pytest's and tempfile's directories are 0700, and Postgres must run as `postgres` when we
        are root; throwaway test data can live in a world-searchable temp dir instead.
        """
        wanted = self.root / "postgres"
        if not self.ephemeral or os.geteuid() != 0:
            return wanted
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            return wanted  # PostgresService reports the missing user
        if unsearchable_ancestor(wanted / "data", user) is None:
            return wanted
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="heysh-postgres-"))
            self._scratch.chmod(0o755)
        return self._scratch

    def _refuse_busy_ports(self) -> None:
        for service in self._services:
            for purpose, port in service.ports.items():
                if not port_is_free(port):
                    raise ServiceError(
                        service.name,
                        f"port {port} ({purpose}) is already in use on 127.0.0.1; is another "
                        "heysh dev or test stack running? Stop it or free the port.",
                    )

    def _wait_all(self, timeout: float) -> None:
        pool = ThreadPoolExecutor(max_workers=len(self._services), thread_name_prefix="heysh-ready")
        ok = False
        try:
            futures = [pool.submit(s.wait_ready, timeout) for s in self._services]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future in done and (error := future.exception()) is not None:
                    raise error
            ok = True
        finally:
            if not ok:  # release the other waiters now rather than at their timeout
                for service in self._services:
                    service.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
