"""A local stand-in for Supabase's JWKS endpoint, plus signing keys and token helpers.

``JwksServer`` serves ``{"keys": [...]}`` from a thread on 127.0.0.1 (free port), counts requests,
and can rotate its key set or start failing at runtime, so key rotation and outage handling can
be tested against a real HTTP round trip.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str  # "ES256" or "RS256"
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """The public half as Supabase publishes it."""
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig", "key_ops": ["verify"]}


def ec_key(kid: str | None = None) -> SigningKey:
    return SigningKey(kid or f"ec-{uuid.uuid4()}", "ES256", ec.generate_private_key(ec.SECP256R1()))


def rsa_key(kid: str | None = None) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid or f"rsa-{uuid.uuid4()}", "RS256", private)


def supabase_claims(
    issuer: str,
    sub: str = "5b6c1c9e-6a5e-4d38-9a34-0c1f1b7d2a11",
    *,
    email: str | None = "user@heysh.test",
    ttl_seconds: int = 3600,
    **overrides: Any,
) -> dict[str, Any]:
    """Claims shaped like a Supabase access token; ``email=None`` leaves the email out."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "aud": "authenticated",
        "role": "authenticated",
        "iss": issuer,
        "iat": now,
        "exp": now + ttl_seconds,
        "email": email,
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    if email is None:
        del claims["email"]
    return {**claims, **overrides}


def sign_token(
    key: SigningKey,
    claims: Mapping[str, Any],
    *,
    kid: str | None = None,
    alg: str | None = None,
) -> str:
    """Sign ``claims`` with ``key``; ``kid``/``alg`` override the header (for forged tokens)."""
    headers = {"kid": kid if kid is not None else key.kid}
    return jwt.encode(dict(claims), key.private_key, algorithm=alg or key.alg, headers=headers)


class JwksServer:
    def __init__(self, keys: Iterable[SigningKey] = ()) -> None:
        self._lock = threading.Lock()
        self._keys = list(keys)
        self._status = 200
        self._requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # A short poll interval keeps stop() (which waits for the serve loop) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._requests

    def set_keys(self, keys: Iterable[SigningKey]) -> None:
        """Rotate: from now on the endpoint publishes exactly ``keys``."""
        with self._lock:
            self._keys = list(keys)

    def set_status(self, status: int) -> None:
        """Answer every request with ``status`` (e.g. 503 for an outage; 200 to recover)."""
        with self._lock:
            self._status = status

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _respond(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            self._requests += 1
            if path != JWKS_PATH:
                return 404, b"{}"
            if self._status != 200:
                return self._status, b'{"error": "unavailable"}'
            return 200, json.dumps({"keys": [k.public_jwk() for k in self._keys]}).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = server._respond(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler
