"""Neo4j 5 Community from its Maven jars, run by ``java``; neo4j.conf is written on each start."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from heysh.local.install import NEO4J_MAIN_CLASS
from heysh.local.services.supervision import LocalService, ServiceError
from heysh.local.tls import ServerSecurity

# Neo4j's admin tool (neo4j-admin), in the same jars as the server.
_ADMIN_MAIN_CLASS = "org.neo4j.cli.AdminTool"

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


# The user the secure profile's password is set for (Neo4j's initial admin).
NEO4J_USER = "neo4j"


def bolt_uri(port: int, *, secure: bool) -> str:
    """What clients connect to: ``bolt+s`` (TLS, verified) in the secure profile."""
    return f"{'bolt+s' if secure else 'bolt'}://127.0.0.1:{port}"


@dataclass(eq=False, repr=False)
class Neo4jService(LocalService):
    name = "neo4j"

    home_dir: Path
    bolt_port: int
    classpath: list[str]
    _: KW_ONLY
    java: Path
    ephemeral: bool = False
    security: ServerSecurity | None = None  # the secure profile: Bolt over TLS only, auth on

    @property
    def ports(self) -> dict[str, int]:
        return {"bolt": self.bolt_port}

    @property
    def uri(self) -> str:
        return bolt_uri(self.bolt_port, secure=self.security is not None)

    @property
    def _profile(self) -> str:
        return "plain" if self.security is None else "secure"

    def prepare(self) -> None:
        conf_dir = self.home_dir / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        fresh = not (self.home_dir / "data").exists()
        profile_file = self.home_dir / "profile"
        if fresh:
            profile_file.write_text(self._profile + "\n")
        made = profile_file.read_text().strip() if profile_file.exists() else "plain"
        if made != self._profile:  # the user's password exists only if a secure start set it
            raise ServiceError(
                self.name,
                f"{self.home_dir} was made by the {made} profile; start it {made}, "
                "or delete it to start afresh",
            )
        address = f"127.0.0.1:{self.bolt_port}"
        settings = {
            "server.default_listen_address": "127.0.0.1",
            "server.bolt.listen_address": address,
            "server.bolt.advertised_address": address,
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            # The plain profile: local only; production and the secure profile use credentials.
            "dbms.security.auth_enabled": "false",
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
        if self.security is not None:
            settings.update(self._secure_settings())
        text = "".join(f"{key}={value}\n" for key, value in settings.items())
        (conf_dir / "neo4j.conf").write_text("# written by heysh on every start\n" + text)
        if self.security is not None and fresh:
            self._set_initial_password(self.security.password)

    def _secure_settings(self) -> dict[str, str]:
        assert self.security is not None
        policy = self.home_dir / "certificates" / "bolt"
        cert, key = self.security.pki.copy_for(policy, None)
        for directory in ("trusted", "revoked"):  # the policy's; no client certificates are used
            (policy / directory).mkdir(exist_ok=True)
        return {
            "dbms.security.auth_enabled": "true",
            "server.bolt.tls_level": "REQUIRED",  # a plain Bolt connection is refused
            "dbms.ssl.policy.bolt.enabled": "true",
            "dbms.ssl.policy.bolt.base_directory": str(policy),
            "dbms.ssl.policy.bolt.private_key": key.name,
            "dbms.ssl.policy.bolt.public_certificate": cert.name,
            "dbms.ssl.policy.bolt.client_auth": "NONE",
        }

    def _set_initial_password(self, password: str) -> None:
        """neo4j-admin's `dbms set-initial-password`, before the first start creates the user."""
        cmd = [str(self.java), "-cp", os.pathsep.join(self.classpath), _ADMIN_MAIN_CLASS]
        cmd += ["dbms", "set-initial-password"]
        env = {
            **os.environ,
            "NEO4J_HOME": str(self.home_dir),
            "NEO4J_CONF": str(self.home_dir / "conf"),
        }
        with open(self.log_path, "ab") as log:  # the command is logged without its password
            log.write(f"--- heysh: running {shlex.join([cmd[0], *cmd[-2:]])} <password>\n".encode())
            log.flush()
            result = subprocess.run(
                [*cmd, "--", password],  # "--": a password may begin with a dash
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )
        if result.returncode != 0:
            raise self.error(f"set-initial-password failed with code {result.returncode}")

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

        from heysh.stores.graph import tls_options

        security = self.security
        ca_file = None if security is None else security.pki.ca_file
        uri, tls = tls_options(self.uri, ca_file)
        driver = GraphDatabase.driver(
            uri,
            auth=None if security is None else (NEO4J_USER, security.password),
            connection_timeout=2.0,
            connection_acquisition_timeout=3.0,
            **tls,
        )
        # An auto-commit session.run, unlike execute_query, has no driver-side retry loop.
        with driver, driver.session() as session:
            record = session.run("RETURN 1 AS one").single(strict=True)
            if record["one"] != 1:
                raise ConnectionError("unexpected answer to RETURN 1")
