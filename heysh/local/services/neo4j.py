"""Neo4j 5 Community from its Maven jars, run by ``java``; neo4j.conf is written on each start."""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from heysh.local.install import NEO4J_MAIN_CLASS
from heysh.local.services.supervision import LocalService

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


@dataclass(eq=False, repr=False)
class Neo4jService(LocalService):
    name = "neo4j"

    home_dir: Path
    bolt_port: int
    classpath: list[str]
    _: KW_ONLY
    java: Path
    ephemeral: bool = False

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
