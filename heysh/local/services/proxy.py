"""The secure profile's TLS front: Caddy terminating TLS for services that cannot serve it.

Weaviate and Temporal's dev server speak plain text only. In production they are Weaviate Cloud
(HTTPS and gRPC over TLS) and Temporal Cloud (gRPC over TLS with an API key), so in the secure
profile clients reach them only through this proxy, with the local CA's certificate, and Temporal's
route refuses a request without the API key as Temporal Cloud does: gRPC status UNAUTHENTICATED.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from heysh.local.services.supervision import LocalService
from heysh.local.tls import LocalPki, write_owner_only

# The refusal a gRPC client reads as UNAUTHENTICATED (status 16), with a message naming no key.
_GRPC_UNAUTHENTICATED = {
    "Content-Type": ["application/grpc"],
    "Grpc-Status": ["16"],
    "Grpc-Message": ["missing or wrong API key"],
}


@dataclass(frozen=True)
class TlsRoute:
    """One TLS listener on ``port`` in front of the plain ``upstream`` port on 127.0.0.1."""

    name: str
    port: int
    upstream: int
    grpc: bool = False  # the upstream speaks HTTP/2 without TLS (h2c)
    # Required as `Authorization: Bearer <key>`; None: the upstream checks credentials itself.
    api_key: str | None = field(default=None, repr=False)


@dataclass(eq=False, repr=False)
class TlsProxyService(LocalService):
    name = "tls-proxy"

    config_dir: Path
    binary: Path
    routes: list[TlsRoute]
    _: KW_ONLY
    pki: LocalPki

    @property
    def ports(self) -> dict[str, int]:
        return {route.name: route.port for route in self.routes}

    @property
    def _config_file(self) -> Path:
        return self.config_dir / "caddy.json"

    def prepare(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.config_dir.chmod(0o700)  # the config holds the API key
        write_owner_only(self._config_file, json.dumps(self._config(), indent=1).encode())

    def command(self) -> list[str]:
        return [str(self.binary), "run", "--config", str(self._config_file)]

    def environment(self) -> dict[str, str]:
        # Caddy keeps state under HOME/XDG dirs: ours, never the user's.
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.config_dir),
            "XDG_DATA_HOME": str(self.config_dir / "data"),
            "XDG_CONFIG_HOME": str(self.config_dir / "config"),
        }

    def probe(self) -> None:
        """A verified TLS handshake on every listener: the certificate is loaded and served."""
        context = ssl.create_default_context(cafile=self.pki.ca_file)
        for route in self.routes:
            with (
                socket.create_connection(("127.0.0.1", route.port), timeout=2.0) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                pass

    def _config(self) -> dict[str, Any]:
        return {
            "admin": {"disabled": True},
            "logging": {"logs": {"default": {"level": "ERROR"}}},
            "storage": {"module": "file_system", "root": str(self.config_dir / "data")},
            "apps": {
                "http": {"servers": {route.name: _server(route) for route in self.routes}},
                "tls": {
                    "certificates": {
                        "load_files": [
                            {"certificate": str(self.pki.cert_file), "key": str(self.pki.key_file)}
                        ]
                    }
                },
            },
        }


def _server(route: TlsRoute) -> dict[str, Any]:
    proxy: dict[str, Any] = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": f"127.0.0.1:{route.upstream}"}],
    }
    if route.grpc:
        proxy["transport"] = {"protocol": "http", "versions": ["h2c"]}
    routes: list[dict[str, Any]] = []
    if route.api_key is not None:
        refusal: dict[str, Any] = (
            {"handler": "static_response", "status_code": 200, "headers": _GRPC_UNAUTHENTICATED}
            if route.grpc
            else {"handler": "static_response", "status_code": 401}
        )
        without_key = {"not": [{"header": {"Authorization": [f"Bearer {route.api_key}"]}}]}
        routes.append({"match": [without_key], "handle": [refusal], "terminal": True})
    routes.append({"handle": [proxy]})
    return {
        "listen": [f"127.0.0.1:{route.port}"],
        "protocols": ["h1", "h2"],  # no HTTP/3: it would take a UDP port as well
        "routes": routes,
        "tls_connection_policies": [{}],  # TLS on every connection, with the loaded certificate
        "automatic_https": {"disable": True},
    }
