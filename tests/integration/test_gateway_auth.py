"""Every GraphQL request is authenticated at the gateway; failures are UNAUTHENTICATED data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from heysh.config import Settings
from tests.support.graphql import GraphQLClient, gateway
from tests.support.jwks import JwksServer, ec_key, rsa_key, sign_token, supabase_claims

pytestmark = pytest.mark.integration

VIEWER = "{ viewer { id } }"
USER_ID = "5b6c1c9e-6a5e-4d38-9a34-0c1f1b7d2a11"


def hs256(settings: Settings, secret: str | None = None, **overrides: Any) -> str:
    claims = supabase_claims(settings.jwt_issuer, USER_ID, **overrides)
    key = secret or settings.supabase_jwt_secret.get_secret_value()  # type: ignore[union-attr]
    return jwt.encode(claims, key, algorithm="HS256")


def assert_unauthenticated(body: dict[str, Any], fragment: str) -> None:
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert fragment in error["message"]
    assert "Traceback" not in str(body)


async def test_valid_dev_token_identifies_the_viewer(api: GraphQLClient) -> None:
    data = await api.data(VIEWER, token=hs256(api.settings))
    assert data == {"viewer": {"id": USER_ID}}


async def test_missing_token_is_unauthenticated(api: GraphQLClient) -> None:
    assert_unauthenticated(await api.execute(VIEWER), "missing bearer token")


async def test_expired_token_is_unauthenticated(api: GraphQLClient) -> None:
    token = hs256(api.settings, ttl_seconds=-3600)
    assert_unauthenticated(await api.execute(VIEWER, token=token), "expired")


async def test_token_signed_with_another_key_is_unauthenticated(api: GraphQLClient) -> None:
    token = hs256(api.settings, secret="a-different-secret-of-sufficient-length-0123456789")
    assert_unauthenticated(await api.execute(VIEWER, token=token), "signature")


async def test_alg_none_token_is_unauthenticated(api: GraphQLClient) -> None:
    claims = supabase_claims(api.settings.jwt_issuer, USER_ID)
    token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    assert_unauthenticated(await api.execute(VIEWER, token=token), "algorithm")


async def test_wrong_audience_is_unauthenticated(api: GraphQLClient) -> None:
    token = hs256(api.settings, aud="anon")
    assert_unauthenticated(await api.execute(VIEWER, token=token), "audience")


async def test_token_whose_sub_is_not_a_uuid_is_unauthenticated(api: GraphQLClient) -> None:
    # Correctly signed, but its subject is no Supabase user id (those are UUIDs).
    claims = supabase_claims(api.settings.jwt_issuer, "alice")
    key = api.settings.supabase_jwt_secret.get_secret_value()  # type: ignore[union-attr]
    token = jwt.encode(claims, key, algorithm="HS256")
    for query in (VIEWER, "{ domains(first: 1) { edges { node { id } } } }"):
        assert_unauthenticated(await api.execute(query, token=token), "token subject invalid")


async def test_mutations_are_refused_without_a_token_and_change_nothing(
    api: GraphQLClient,
) -> None:
    body = await api.execute('mutation { createDomain(input: {name: "x"}) { __typename } }')
    assert_unauthenticated(body, "missing bearer token")


async def test_invalid_graphql_gets_a_coded_error_not_a_stack_trace(api: GraphQLClient) -> None:
    body = await api.execute("{ viewer { id ", user="alice")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    body = await api.execute("{ noSuchField }", user="alice")
    assert "noSuchField" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_query_deeper_than_the_limit_is_refused(api: GraphQLClient) -> None:
    deep = "{ domains { edges { node { lastRun { steps { name } } } } } }"
    limited = api.settings.model_copy(update={"max_query_depth": 3})
    async with gateway(limited) as client:
        body = await client.execute(deep, user="alice")
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


@pytest.fixture
async def jwks_api(
    settings: Settings, worker: None
) -> AsyncIterator[tuple[GraphQLClient, JwksServer]]:
    with JwksServer([ec_key()]) as server:
        jwks_settings = settings.model_copy(
            update={"supabase_jwks_url": server.url, "jwks_min_refresh_seconds": 0}
        )
        async with gateway(jwks_settings) as client:
            yield client, server


async def test_jwks_signed_tokens_are_accepted_across_key_rotation(
    jwks_api: tuple[GraphQLClient, JwksServer],
) -> None:
    client, server = jwks_api
    first_key = ec_key()
    server.set_keys([first_key])
    claims = supabase_claims(client.settings.jwt_issuer, USER_ID)
    assert await client.data(VIEWER, token=sign_token(first_key, claims)) == {
        "viewer": {"id": USER_ID}
    }

    rotated = rsa_key()
    server.set_keys([first_key, rotated])
    token = sign_token(rotated, supabase_claims(client.settings.jwt_issuer, USER_ID))
    assert await client.data(VIEWER, token=token) == {"viewer": {"id": USER_ID}}

    stranger = ec_key()
    forged = sign_token(stranger, claims, kid=first_key.kid)
    assert_unauthenticated(await client.execute(VIEWER, token=forged), "signature")


async def test_introspection_is_anonymous_only_where_configured(
    api: GraphQLClient, settings: Settings
) -> None:
    introspect = "{ __schema { queryType { name } } }"
    assert (await api.data(introspect))["__schema"]["queryType"]["name"] == "Query"

    closed = settings.model_copy(update={"introspection": False, "graphiql": False})
    async with gateway(closed) as client:
        http = client.http
        anonymous = await client.execute(introspect)
        assert anonymous["data"] is None
        assert anonymous["errors"]
        signed_in = await client.execute(introspect, user="alice")
        assert "introspection" in signed_in["errors"][0]["message"].lower()
        ide = await http.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 404
        opened_ide = await api.http.get("/graphql", headers={"Accept": "text/html"})
        assert opened_ide.status_code == 200
        assert "graphiql" in opened_ide.text.lower()
