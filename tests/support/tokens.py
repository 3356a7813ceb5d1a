"""Access tokens for the suite's users, made the way the gateway under test verifies them.

Plain profile: HS256 tokens from the settings' shared secret (``mint_dev_token``), as `heysh dev`
makes them. Secure profile: the gateway runs in production mode and trusts only a JWKS endpoint,
so tokens are ES256, signed by the key that endpoint publishes, as Supabase issues them.
"""

from __future__ import annotations

from heysh.auth import mint_dev_token
from heysh.config import Settings
from tests.support.jwks import SigningKey, sign_token, supabase_claims

_SIGNERS: dict[str, SigningKey] = {}  # a JWKS URL -> the key it publishes


def trust_jwks(url: str, key: SigningKey) -> None:
    """Sign tokens with ``key`` for settings whose HEYSH_SUPABASE_JWKS_URL is ``url``."""
    _SIGNERS[url] = key


def user_token(
    settings: Settings, user_id: str, *, email: str | None = None, ttl_seconds: int = 3600
) -> str:
    """A valid access token for ``user_id`` at the gateway that ``settings`` configure."""
    if settings.supabase_jwks_url is None:
        return mint_dev_token(settings, user_id, email=email, ttl_seconds=ttl_seconds)
    claims = supabase_claims(settings.jwt_issuer, user_id, email=email, ttl_seconds=ttl_seconds)
    return sign_token(_SIGNERS[settings.supabase_jwks_url], claims)
