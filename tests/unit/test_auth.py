from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest

from heysh.auth import AuthError, TokenVerifier, User, bearer_token, mint_dev_token
from heysh.config import ConfigError, Settings
from tests.support.jwks import JwksServer, ec_key, rsa_key, sign_token, supabase_claims

UNAVAILABLE = "cannot verify token: key set unavailable"
# Supabase user ids (the sub claim) are auth.users UUIDs.
USER_A = "0c8f3f52-5a0e-4c1b-9d6e-2b7a4e1f9c30"
USER_B = "7d2e9b14-3f6a-4e8c-a1b5-c9d0e2f4a6b8"
# A fresh secret per run, as the suite and `heysh dev` use: none is committed.
SECRET = secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def _no_heysh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HEYSH_"):
            monkeypatch.delenv(name)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def local_settings(**overrides: Any) -> Settings:
    return Settings(env="test", **{"supabase_jwt_secret": SECRET, **overrides})


def jwks_settings(url: str, **overrides: Any) -> Settings:
    return Settings(env="test", supabase_jwt_secret=None, supabase_jwks_url=url, **overrides)


@asynccontextmanager
async def verifier_for(settings: Settings) -> AsyncIterator[TokenVerifier]:
    verifier = TokenVerifier(settings)
    try:
        yield verifier
    finally:
        await verifier.aclose()


async def refusal(settings: Settings, token: str) -> str:
    async with verifier_for(settings) as verifier:
        with pytest.raises(AuthError) as caught:
            await verifier.verify(token)
    message = str(caught.value)
    assert not token or token not in message
    return message


def hs256(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: Any) -> str:
    header = {"alg": alg, "typ": "JWT"}
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


def hs256_by_hand(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """HS256 with any bytes as the secret (PyJWT itself refuses public keys as HMAC secrets)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# --- HS256 (project JWT secret) --------------------------------------------------------------


@pytest.mark.asyncio
async def test_dev_token_is_accepted_and_round_trips_identity() -> None:
    settings = local_settings()
    token = mint_dev_token(settings, USER_A, email="ada@heysh.test")
    async with verifier_for(settings) as verifier:
        user = await verifier.verify(token)
    assert user == User(id=USER_A, email="ada@heysh.test", role="authenticated")


@pytest.mark.asyncio
async def test_dev_token_without_email_gives_user_without_email() -> None:
    settings = local_settings()
    async with verifier_for(settings) as verifier:
        user = await verifier.verify(mint_dev_token(settings, USER_B))
    assert user.email is None


@pytest.mark.asyncio
async def test_expired_token_is_refused() -> None:
    settings = local_settings()
    token = mint_dev_token(settings, "user-1", ttl_seconds=-3600)
    assert await refusal(settings, token) == "token expired"


@pytest.mark.asyncio
async def test_token_expired_within_clock_skew_leeway_is_accepted() -> None:
    settings = local_settings()
    async with verifier_for(settings) as verifier:
        user = await verifier.verify(mint_dev_token(settings, USER_A, ttl_seconds=-10))
    assert user.id == USER_A


@pytest.mark.asyncio
async def test_token_signed_with_another_secret_is_refused() -> None:
    settings = local_settings()
    token = hs256(supabase_claims(settings.jwt_issuer), secret="another-projects-secret-0123456789")
    assert await refusal(settings, token) == "token signature invalid"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
@pytest.mark.asyncio
async def test_alg_none_token_is_refused(alg: str) -> None:
    settings = local_settings()
    token = unsigned(supabase_claims(settings.jwt_issuer), alg)
    assert await refusal(settings, token) == "token algorithm not accepted"


@pytest.mark.parametrize("alg", [["HS256"], {"alg": "ES256"}, 256, None])
@pytest.mark.asyncio
async def test_non_string_alg_header_is_refused(alg: Any) -> None:
    settings = local_settings()
    token = unsigned(supabase_claims(settings.jwt_issuer), alg)
    assert await refusal(settings, token) == "token algorithm not accepted"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.asyncio
async def test_other_hmac_algorithm_is_refused_even_with_the_right_secret() -> None:
    settings = local_settings()
    token = hs256(supabase_claims(settings.jwt_issuer), alg="HS512")
    assert await refusal(settings, token) == "token algorithm not accepted"


@pytest.mark.asyncio
async def test_wrong_audience_is_refused() -> None:
    settings = local_settings()
    token = hs256(supabase_claims(settings.jwt_issuer, aud="anon"))
    assert await refusal(settings, token) == "token audience not accepted"


@pytest.mark.asyncio
async def test_wrong_issuer_is_refused() -> None:
    settings = local_settings()
    token = hs256(supabase_claims("https://other-project.supabase.co/auth/v1"))
    assert await refusal(settings, token) == "token issuer not accepted"


@pytest.mark.parametrize("claim", ["sub", "exp", "aud", "iss", "role"])
@pytest.mark.asyncio
async def test_token_missing_a_required_claim_is_refused(claim: str) -> None:
    settings = local_settings()
    claims = supabase_claims(settings.jwt_issuer)
    del claims[claim]
    token = hs256(claims)
    assert await refusal(settings, token) == f"token missing required claim: {claim}"


@pytest.mark.asyncio
async def test_token_with_empty_sub_is_refused() -> None:
    settings = local_settings()
    token = hs256(supabase_claims(settings.jwt_issuer, sub=""))
    assert await refusal(settings, token) == "token subject invalid"


@pytest.mark.parametrize("sub", ["alice", "user-9", "12345", "5b6c1c9e-6a5e-4d38-9a34"])
@pytest.mark.asyncio
async def test_token_whose_sub_is_not_a_uuid_is_refused(sub: str) -> None:
    settings = local_settings()
    token = hs256(supabase_claims(settings.jwt_issuer, sub=sub))
    assert await refusal(settings, token) == "token subject invalid"


@pytest.mark.asyncio
async def test_supabase_anon_key_is_not_a_user_token() -> None:
    # The anon API key is an HS256 JWT with role "anon" and no sub; it identifies no user.
    settings = local_settings()
    token = hs256({"iss": "supabase-demo", "role": "anon", "exp": int(time.time()) + 60})
    assert await refusal(settings, token) == "token missing required claim: sub"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "a.b"])
@pytest.mark.asyncio
async def test_malformed_token_is_refused(token: str) -> None:
    assert await refusal(local_settings(), token) == "token malformed"


@pytest.mark.asyncio
async def test_asymmetric_token_is_refused_when_no_jwks_url_is_configured() -> None:
    settings = local_settings()
    token = sign_token(ec_key(), supabase_claims(settings.jwt_issuer))
    assert await refusal(settings, token) == "token algorithm not accepted"


# --- ES256 / RS256 (JWKS) --------------------------------------------------------------------


@pytest.mark.parametrize("make_key", [ec_key, rsa_key], ids=["ES256", "RS256"])
@pytest.mark.asyncio
async def test_asymmetric_token_from_jwks_is_accepted(
    jwks_server: JwksServer, make_key: Any
) -> None:
    key = make_key()
    jwks_server.set_keys([key])
    settings = jwks_settings(jwks_server.url)
    token = sign_token(key, supabase_claims(settings.jwt_issuer, sub=USER_B, email="b@heysh.test"))
    async with verifier_for(settings) as verifier:
        user = await verifier.verify(token)
    assert user == User(id=USER_B, email="b@heysh.test", role="authenticated")


@pytest.mark.asyncio
async def test_key_set_is_cached_between_tokens(jwks_server: JwksServer) -> None:
    key = ec_key()
    jwks_server.set_keys([key, rsa_key()])
    settings = jwks_settings(jwks_server.url)
    async with verifier_for(settings) as verifier:
        for _ in range(5):
            await verifier.verify(sign_token(key, supabase_claims(settings.jwt_issuer)))
    assert jwks_server.request_count == 1


@pytest.mark.asyncio
async def test_jwks_token_signed_by_another_key_under_a_known_kid_is_refused(
    jwks_server: JwksServer,
) -> None:
    published = ec_key()
    jwks_server.set_keys([published])
    settings = jwks_settings(jwks_server.url)
    forged = sign_token(ec_key(), supabase_claims(settings.jwt_issuer), kid=published.kid)
    assert await refusal(settings, forged) == "token signature invalid"


@pytest.mark.asyncio
async def test_header_alg_not_matching_the_kids_key_type_is_refused(
    jwks_server: JwksServer,
) -> None:
    published = rsa_key()
    jwks_server.set_keys([published])
    settings = jwks_settings(jwks_server.url)
    token = sign_token(ec_key(), supabase_claims(settings.jwt_issuer), kid=published.kid)
    assert await refusal(settings, token) == "token algorithm not accepted"


@pytest.mark.asyncio
async def test_expired_jwks_token_is_refused(jwks_server: JwksServer) -> None:
    key = ec_key()
    jwks_server.set_keys([key])
    settings = jwks_settings(jwks_server.url)
    token = sign_token(key, supabase_claims(settings.jwt_issuer, ttl_seconds=-600))
    assert await refusal(settings, token) == "token expired"


@pytest.mark.asyncio
async def test_jwks_token_without_kid_is_refused(jwks_server: JwksServer) -> None:
    key = ec_key()
    jwks_server.set_keys([key])
    settings = jwks_settings(jwks_server.url)
    token = sign_token(key, supabase_claims(settings.jwt_issuer), kid="")
    assert await refusal(settings, token) == "token has no key id"


@pytest.mark.asyncio
async def test_hs256_token_is_refused_when_only_jwks_is_configured(
    jwks_server: JwksServer,
) -> None:
    # Algorithm confusion: an attacker HMAC-signs with the *public* key as the shared secret.
    key = ec_key()
    jwks_server.set_keys([key])
    settings = jwks_settings(jwks_server.url)
    public_jwk = json.dumps(key.public_jwk()).encode()
    token = hs256_by_hand(supabase_claims(settings.jwt_issuer), public_jwk, key.kid)
    assert await refusal(settings, token) == "token algorithm not accepted"
    assert jwks_server.request_count == 0


@pytest.mark.asyncio
async def test_rotated_key_is_accepted_after_refetching_the_set(jwks_server: JwksServer) -> None:
    old, new = ec_key(), ec_key()
    jwks_server.set_keys([old])
    settings = jwks_settings(jwks_server.url, jwks_min_refresh_seconds=0.1)
    async with verifier_for(settings) as verifier:
        await verifier.verify(sign_token(old, supabase_claims(settings.jwt_issuer)))
        jwks_server.set_keys([new])
        await asyncio.sleep(0.15)  # past the refresh rate limit
        user = await verifier.verify(sign_token(new, supabase_claims(settings.jwt_issuer)))
        assert user.role == "authenticated"
        assert jwks_server.request_count == 2
        # The refetched set replaced the old one: the retired key no longer verifies anything.
        await asyncio.sleep(0.15)
        with pytest.raises(AuthError, match="token key unknown"):
            await verifier.verify(sign_token(old, supabase_claims(settings.jwt_issuer)))


@pytest.mark.asyncio
async def test_flood_of_unknown_kids_refetches_at_most_once_per_window(
    jwks_server: JwksServer,
) -> None:
    key = ec_key()
    jwks_server.set_keys([key])
    settings = jwks_settings(jwks_server.url, jwks_min_refresh_seconds=30.0)
    claims = supabase_claims(settings.jwt_issuer)
    garbage = [sign_token(ec_key(), claims, kid=f"garbage-{i}") for i in range(50)]
    async with verifier_for(settings) as verifier:
        # Concurrent first: the refreshes coalesce behind one lock-held fetch.
        results = await asyncio.gather(
            *(verifier.verify(t) for t in garbage), return_exceptions=True
        )
        assert all(isinstance(r, AuthError) and str(r) == "token key unknown" for r in results)
        # Then sequential: every one is inside the window, so none may fetch.
        for token in garbage:
            with pytest.raises(AuthError, match="token key unknown"):
                await verifier.verify(token)
        assert jwks_server.request_count == 1
        # Real tokens are still served from the cached set.
        await verifier.verify(sign_token(key, claims))
    assert jwks_server.request_count == 1


@pytest.mark.asyncio
async def test_unreachable_jwks_server_gives_auth_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = JwksServer().start()
    url = server.url
    server.stop()  # nothing listens on the port any more
    settings = jwks_settings(url)
    token = sign_token(ec_key(), supabase_claims(settings.jwt_issuer))
    with caplog.at_level(logging.WARNING, logger="heysh.auth"):
        assert await refusal(settings, token) == UNAVAILABLE
    assert "JWKS fetch" in caplog.text
    assert token not in caplog.text


@pytest.mark.parametrize("status", [500, 503, 404])
@pytest.mark.asyncio
async def test_failing_jwks_server_gives_auth_error(jwks_server: JwksServer, status: int) -> None:
    jwks_server.set_keys([ec_key()])
    jwks_server.set_status(status)
    settings = jwks_settings(jwks_server.url)
    token = sign_token(ec_key(), supabase_claims(settings.jwt_issuer))
    assert await refusal(settings, token) == UNAVAILABLE


@pytest.mark.asyncio
async def test_cached_keys_survive_a_failed_refresh(jwks_server: JwksServer) -> None:
    key = ec_key()
    jwks_server.set_keys([key])
    settings = jwks_settings(jwks_server.url, jwks_min_refresh_seconds=0.0)
    claims = supabase_claims(settings.jwt_issuer)
    async with verifier_for(settings) as verifier:
        await verifier.verify(sign_token(key, claims))
        jwks_server.set_status(503)
        with pytest.raises(AuthError, match=UNAVAILABLE):
            await verifier.verify(sign_token(ec_key(), claims))
        assert (await verifier.verify(sign_token(key, claims))).role == "authenticated"


@pytest.mark.asyncio
async def test_stale_key_set_is_refetched_so_revoked_keys_stop_working(
    jwks_server: JwksServer,
) -> None:
    revoked = ec_key()
    jwks_server.set_keys([revoked])
    settings = jwks_settings(jwks_server.url, jwks_min_refresh_seconds=0.0)
    claims = supabase_claims(settings.jwt_issuer)
    async with verifier_for(settings) as verifier:
        verifier.jwks_max_age_seconds = 0.0
        await verifier.verify(sign_token(revoked, claims))
        jwks_server.set_keys([ec_key()])
        with pytest.raises(AuthError, match="token key unknown"):
            await verifier.verify(sign_token(revoked, claims))


@pytest.mark.asyncio
async def test_verifier_accepts_both_hs256_and_jwks_tokens_when_both_are_configured(
    jwks_server: JwksServer,
) -> None:
    key = rsa_key()
    jwks_server.set_keys([key])
    settings = local_settings(supabase_jwks_url=jwks_server.url)
    async with verifier_for(settings) as verifier:
        assert (await verifier.verify(mint_dev_token(settings, USER_A))).id == USER_A
        token = sign_token(key, supabase_claims(settings.jwt_issuer, sub=USER_B))
        assert (await verifier.verify(token)).id == USER_B


@pytest.mark.asyncio
async def test_verifier_uses_a_given_http_client_and_leaves_it_open(
    jwks_server: JwksServer,
) -> None:
    import httpx

    key = ec_key()
    jwks_server.set_keys([key])
    settings = jwks_settings(jwks_server.url)
    async with httpx.AsyncClient() as http:
        verifier = TokenVerifier(settings, http)
        await verifier.verify(sign_token(key, supabase_claims(settings.jwt_issuer)))
        await verifier.aclose()
        assert not http.is_closed


# --- mint_dev_token --------------------------------------------------------------------------


def production_settings() -> Settings:
    return Settings(
        env="production",
        supabase_url="https://abcdefghijklmnop.supabase.co",
        supabase_jwt_secret="Zq8vN3rT6wY1uI4oP7aS0dF2gH5jK9lX",
        database_url="postgresql://app:Vx9-k2Lm-Qp7@db.abcdefghijklmnop.supabase.co:5432/postgres",
        neo4j_password="n4j-Rk82-Tz51-Wq09",
        weaviate_api_key="wv-3Jd8Ks92Lq1Mz7Np",
        temporal_api_key="tmprl-8Hs2Kd9Lq3Mx7Pz",
    )


def test_mint_dev_token_refuses_in_production() -> None:
    with pytest.raises(ConfigError, match="dev or test"):
        mint_dev_token(production_settings(), "user-1")


def test_mint_dev_token_refuses_without_a_jwt_secret() -> None:
    settings = jwks_settings("http://127.0.0.1:1/jwks.json")
    with pytest.raises(ConfigError, match="HEYSH_SUPABASE_JWT_SECRET"):
        mint_dev_token(settings, "user-1")


def test_minted_dev_token_has_supabase_claims() -> None:
    settings = local_settings()
    token = mint_dev_token(settings, "user-1", email="ada@heysh.test", ttl_seconds=120)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["sub"] == "user-1"
    assert claims["aud"] == "authenticated"
    assert claims["role"] == "authenticated"
    assert claims["iss"] == settings.jwt_issuer == "http://127.0.0.1:54321/auth/v1"
    assert claims["email"] == "ada@heysh.test"
    assert claims["is_anonymous"] is False
    assert isinstance(claims["session_id"], str)
    assert claims["session_id"]
    assert claims["exp"] - claims["iat"] == 120


# --- bearer_token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER abc.def.ghi", "  Bearer   abc.def.ghi  "],
)
def test_bearer_token_extracts_the_token(header: str) -> None:
    assert bearer_token(header) == "abc.def.ghi"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("   ", "missing bearer token"),
        ("Bearer", "missing bearer token"),
        ("Bearer   ", "missing bearer token"),
        ("Basic dXNlcjpwYXNz", "authorization scheme must be Bearer"),
        ("abc.def.ghi", "authorization scheme must be Bearer"),
        ("Bearer abc def", "malformed bearer token"),
    ],
)
def test_bearer_token_refuses_bad_headers(header: str | None, message: str) -> None:
    with pytest.raises(AuthError) as caught:
        bearer_token(header)
    assert str(caught.value) == message
