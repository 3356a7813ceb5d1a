"""Weaviate from its ``go install``-built server binary, on loopback with a clean environment."""

from __future__ import annotations

import os
import socket
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

from heysh.local.services.supervision import LocalService


@dataclass(eq=False, repr=False)
class WeaviateService(LocalService):
    name = "weaviate"

    data_dir: Path
    binary: Path
    _: KW_ONLY
    http_port: int
    grpc_port: int
    gossip_port: int  # gossip+1 is its data port
    raft_port: int  # raft+1 is its internal RPC port
    # The secure profile: only requests with this key (`Authorization: Bearer`) are served.
    api_key: str | None = field(default=None, repr=False)

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
        env = {
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
        if self.api_key is not None:
            env |= {
                "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
                "AUTHENTICATION_APIKEY_ENABLED": "true",
                "AUTHENTICATION_APIKEY_ALLOWED_KEYS": self.api_key,
                "AUTHENTICATION_APIKEY_USERS": "heysh",
            }
        return env

    def probe(self) -> None:
        import httpx

        response = httpx.get(f"{self.url}/v1/.well-known/ready", timeout=2.0)
        if response.status_code != 200:
            raise ConnectionError(f"ready endpoint answered {response.status_code}")
        socket.create_connection(("127.0.0.1", self.grpc_port), timeout=2.0).close()
