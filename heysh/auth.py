"""Local verification of Supabase Auth access tokens.

Supabase signs access tokens either with the project's shared secret (HS256, legacy) or with an
asymmetric signing key (ES256/RS256) whose public half is published at the project's JWKS URL
(``<supabase_url>/auth/v1/.well-known/jwks.json``). Both are checked here without a round trip
to Supabase. Every failure becomes an ``AuthError`` whose message is safe to return to a client.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import InvalidSubjectError

from heysh.config import ConfigError, Settings

logger = logging.getLogger(__name__)

# Tolerated clock skew between Supabase and us.
LEEWAY_SECONDS = 30
# Claims Supabase always issues; without them a token says nothing we can trust.
_REQUIRED_CLAIMS = ["exp", "sub", "aud", "iss"]
# The asymmetric algorithms Supabase signs with, and the key type each needs. A key is pinned to
# its one algorithm (PyJWT also pins ES256 to P-256), so it never verifies under another.
_JWKS_ALGORITHMS = {"ES256": "EC", "RS256": "RSA"}
_KEY_SET_UNAVAILABLE = "cannot verify token: key set unavailable"
_JWKS_TIMEOUT_SECONDS = 5.0

# Each PyJWT failure maps to one fixed message: PyJWT's own messages are not meant for clients.
_MESSAGES: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "token audience not accepted"),
    (jwt.InvalidIssuerError, "token issuer not accepted"),
    (InvalidSubjectError, "token subject invalid"),
    (jwt.InvalidIssuedAtError, "token issued-at invalid"),
    (jwt.InvalidAlgorithmError, "token algorithm not accepted"),
    (jwt.InvalidSignatureError, "token signature invalid"),
    (jwt.DecodeError, "token malformed"),
]


class AuthError(Exception):
    """Authentication failed; the message is safe to show a client (no token, no secret)."""


@dataclass(frozen=True)
class User:
    id: str  # the JWT `sub`: Supabase auth.users id
    email: str | None
    role: str  # the `role` claim, e.g. "authenticated"
    # The `exp` claim: a WebSocket signed in with this token is closed when it passes.
    expires_at: float | None = field(default=None, compare=False)


def bearer_token(authorization_header: str | None) -> str:
    """Extract the token from an ``Authorization: Bearer <token>`` header value."""
    parts = (authorization_header or "").split()
    if not parts:
        raise AuthError("missing bearer token")
    if parts[0].lower() != "bearer":  # the scheme is case-insensitive (RFC 7235)
        raise AuthError("authorization scheme must be Bearer")
    if len(parts) == 1:
        raise AuthError("missing bearer token")
    if len(parts) > 2:
        raise AuthError("malformed bearer token")
    return parts[1]


class TokenVerifier:
    """Verifies access tokens; one instance per process so the JWKS cache is shared."""

    # Refetch a cached key set this old even if it knows the kid, so revoked keys stop working.
    jwks_max_age_seconds = 600.0

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._secret = (
            settings.supabase_jwt_secret.get_secret_value()
            if settings.supabase_jwt_secret is not None
            else None
        )
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=_JWKS_TIMEOUT_SECONDS)
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_fetch_failed = False
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def verify(self, token: str) -> User:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("token malformed") from None
        # The header only selects which key type to try; the allow-list handed to PyJWT below is
        # fixed by that key type, never taken from the token.
        alg = header.get("alg")
        key: str | PyJWK
        if not isinstance(alg, str):  # e.g. a list, which would not even be hashable
            raise AuthError("token algorithm not accepted")
        if alg == "HS256" and self._secret is not None:
            key = self._secret
        elif alg in _JWKS_ALGORITHMS and self._settings.supabase_jwks_url is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise AuthError("token has no key id")
            key = await self._jwk(kid)
            alg = key.algorithm_name
        else:
            raise AuthError("token algorithm not accepted")
        claims = self._decode(token, key, alg)
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            raise AuthError("token missing required claim: role")
        email = claims.get("email")
        return User(
            id=claims["sub"],
            email=email if isinstance(email, str) and email else None,
            role=role,
            expires_at=float(claims["exp"]),
        )

    def _decode(self, token: str, key: str | PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token missing required claim: {exc.claim}") from None
        except jwt.PyJWTError as exc:
            message = next((m for t, m in _MESSAGES if isinstance(exc, t)), "token invalid")
            raise AuthError(message) from None
        # PyJWT checks that sub is a string; heysh keys members and runs by the Supabase
        # auth.users id it carries, so anything but a UUID identifies no user of ours.
        if not _is_uuid(claims["sub"]):
            raise AuthError("token subject invalid")
        return claims

    async def _jwk(self, kid: str) -> PyJWK:
        if kid not in self._keys or self._stale():
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise AuthError(
                _KEY_SET_UNAVAILABLE if self._last_fetch_failed else "token key unknown"
            )
        return key

    def _stale(self) -> bool:
        return (
            self._fetched_at is not None
            and time.monotonic() - self._fetched_at > self.jwks_max_age_seconds
        )

    async def _refresh(self) -> None:
        # One fetch at a time; callers queued behind it see the fresh attempt and return, and the
        # minimum interval stops unknown (possibly forged) kids from hammering the endpoint.
        async with self._lock:
            now = time.monotonic()
            if (
                self._last_attempt is not None
                and now - self._last_attempt < self._settings.jwks_min_refresh_seconds
            ):
                return
            self._last_attempt = now
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, TypeError, jwt.PyJWTError) as exc:
                # Keep any keys we had: a flaky endpoint should not log everyone out.
                self._last_fetch_failed = True
                url = self._settings.supabase_jwks_url
                logger.warning("JWKS fetch from %s failed: %s", url, type(exc).__name__)
                return
            self._keys, self._fetched_at, self._last_fetch_failed = keys, now, False

    async def _fetch(self) -> dict[str, PyJWK]:
        assert self._settings.supabase_jwks_url is not None  # verify() only gets here if set
        response = await self._http.get(self._settings.supabase_jwks_url)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise TypeError("JWKS is not an object")
        if data.get("keys") == []:  # a project without asymmetric keys yet: valid, just empty
            return {}
        return {k.key_id: k for k in PyJWKSet.from_dict(data) if k.key_id and _usable(k)}


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _usable(key: PyJWK) -> bool:
    """Only signing keys of the types Supabase issues (an ``oct`` key here would be a gift)."""
    kty = _JWKS_ALGORITHMS.get(key.algorithm_name)
    return kty is not None and key.key_type == kty and key.public_key_use in (None, "sig")


def mint_dev_token(
    settings: Settings, user_id: str, *, email: str | None = None, ttl_seconds: int = 3600
) -> str:
    """An HS256 access token shaped like Supabase's, for local development and tests only."""
    if not settings.is_local:
        raise ConfigError("dev tokens can only be minted when HEYSH_ENV is dev or test")
    if settings.supabase_jwt_secret is None:
        raise ConfigError("dev tokens need HEYSH_SUPABASE_JWT_SECRET")
    return mint_token(
        settings.supabase_jwt_secret.get_secret_value(),
        user_id,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        email=email,
        ttl_seconds=ttl_seconds,
    )


def mint_token(
    secret: str,
    user_id: str,
    *,
    issuer: str,
    audience: str,
    email: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    """The HS256 token itself; callers decide whether minting is allowed (see mint_dev_token)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "aud": audience,
        "role": "authenticated",
        "iss": issuer,
        "iat": now,
        "exp": now + ttl_seconds,
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    if email is not None:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")
