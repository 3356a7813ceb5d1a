from __future__ import annotations

import os
from typing import Any

import pytest

from heysh.config import RETIRED_DEV_JWT_SECRET, ConfigError, Environment, Settings

# Real-looking (non-placeholder) production values; none may ever appear in an error message.
SECRETS = {
    "supabase_jwt_secret": "Zq8vN3rT6wY1uI4oP7aS0dF2gH5jK9lX",
    "database_url": "postgresql://app:Vx9-k2Lm-Qp7@db.abcdefghijklmnop.supabase.co:5432/postgres",
    "neo4j_password": "n4j-Rk82-Tz51-Wq09",
    "weaviate_api_key": "wv-3Jd8Ks92Lq1Mz7Np",
    "temporal_api_key": "tmprl-8Hs2Kd9Lq3Mx7Pz",
}
PRODUCTION: dict[str, Any] = {
    "env": "production",
    "supabase_url": "https://abcdefghijklmnop.supabase.co",
    **SECRETS,
}


@pytest.fixture(autouse=True)
def _no_heysh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HEYSH_"):
            monkeypatch.delenv(name)


def refusal(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings(**{**PRODUCTION, **overrides})
    message = str(caught.value)
    for secret in [*SECRETS.values(), RETIRED_DEV_JWT_SECRET]:
        assert secret not in message
    return message


def test_without_heysh_env_settings_are_production_and_refuse_missing_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings()
    message = str(caught.value)
    assert "HEYSH_ENV=production" in message
    assert "HEYSH_SUPABASE_JWT_SECRET" in message
    assert "HEYSH_DATABASE_URL" in message


def test_without_heysh_env_graphiql_and_introspection_are_off() -> None:
    settings = Settings(**{k: v for k, v in PRODUCTION.items() if k != "env"})
    assert settings.env is Environment.PRODUCTION
    assert not settings.is_local
    assert not settings.graphiql_enabled
    assert not settings.introspection_enabled


def test_no_jwt_secret_is_built_in_even_in_dev() -> None:
    settings = Settings(env="dev")
    assert settings.supabase_jwt_secret is None
    assert settings.jwt_issuer == "http://127.0.0.1:54321/auth/v1"
    assert settings.jwt_audience == "authenticated"


@pytest.mark.parametrize("env", ["dev", "test"])
def test_the_retired_dev_jwt_secret_is_refused_in_dev_and_test_too(env: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(env=env, supabase_jwt_secret=RETIRED_DEV_JWT_SECRET)
    assert "HEYSH_SUPABASE_JWT_SECRET" in str(caught.value)
    assert RETIRED_DEV_JWT_SECRET not in str(caught.value)


def test_settings_are_read_from_heysh_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEYSH_ENV", "test")
    monkeypatch.setenv("HEYSH_SUPABASE_URL", "https://abcdefghijklmnop.supabase.co/")
    settings = Settings()
    assert settings.env is Environment.TEST
    assert settings.jwt_issuer == "https://abcdefghijklmnop.supabase.co/auth/v1"


def test_production_with_real_looking_values_passes() -> None:
    settings = Settings(**PRODUCTION)
    assert not settings.is_local
    assert settings.jwt_issuer == "https://abcdefghijklmnop.supabase.co/auth/v1"


def test_production_with_jwks_only_and_no_jwt_secret_passes() -> None:
    settings = Settings(
        **{
            **PRODUCTION,
            "supabase_jwt_secret": None,
            "supabase_jwks_url": "https://abcdefghijklmnop.supabase.co/auth/v1/.well-known/jwks.json",
        }
    )
    assert settings.supabase_jwt_secret is None


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("database_url", ""),  # not optional: "missing" is an empty value
        ("neo4j_password", None),
        ("weaviate_api_key", None),
        ("temporal_api_key", None),
    ],
)
def test_production_with_a_missing_secret_names_it(name: str, missing: str | None) -> None:
    assert f"HEYSH_{name.upper()}" in refusal(**{name: missing})


def test_production_with_the_retired_dev_jwt_secret_names_it_without_echoing_it() -> None:
    message = refusal(supabase_jwt_secret=RETIRED_DEV_JWT_SECRET)
    assert "HEYSH_SUPABASE_JWT_SECRET" in message


def test_production_without_any_jwt_verification_config_is_refused() -> None:
    assert "HEYSH_SUPABASE_JWT_SECRET" in refusal(supabase_jwt_secret=None)


@pytest.mark.parametrize(
    ("name", "placeholder"),
    [
        ("neo4j_password", "changeme"),
        ("weaviate_api_key", "<your-weaviate-key>"),
        ("temporal_api_key", "your_temporal_api_key"),
        ("database_url", "postgresql://user:pass@db.example.com/postgres"),
        ("supabase_jwt_secret", "TODO"),
    ],
)
def test_production_with_a_placeholder_secret_names_it_without_echoing_it(
    name: str, placeholder: str
) -> None:
    message = refusal(**{name: placeholder})
    assert f"HEYSH_{name.upper()}" in message
    assert placeholder not in message


def test_production_reports_every_problem_at_once() -> None:
    message = refusal(neo4j_password=None, weaviate_api_key="changeme")
    assert "HEYSH_NEO4J_PASSWORD" in message
    assert "HEYSH_WEAVIATE_API_KEY" in message


def test_production_with_placeholder_jwt_secret_next_to_jwks_is_refused() -> None:
    jwks_url = "https://abcdefghijklmnop.supabase.co/auth/v1/.well-known/jwks.json"
    message = refusal(supabase_jwks_url=jwks_url, supabase_jwt_secret="secret")
    assert "HEYSH_SUPABASE_JWT_SECRET" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:54321", "http://localhost:54321"])
def test_production_with_a_local_supabase_url_is_refused(url: str) -> None:
    assert "HEYSH_SUPABASE_URL" in refusal(supabase_url=url)


@pytest.mark.parametrize("env", ["dev", "test"])
def test_local_environments_accept_missing_secrets(env: str) -> None:
    settings = Settings(env=env, neo4j_password=None, weaviate_api_key=None)
    assert settings.is_local


def test_graphiql_and_introspection_are_on_in_dev() -> None:
    settings = Settings(env="dev")
    assert settings.graphiql_enabled
    assert settings.introspection_enabled


def test_graphiql_and_introspection_are_off_in_production() -> None:
    settings = Settings(**PRODUCTION)
    assert not settings.graphiql_enabled
    assert not settings.introspection_enabled


def test_graphiql_and_introspection_can_be_overridden() -> None:
    production = Settings(**PRODUCTION, graphiql=True, introspection=True)
    assert production.graphiql_enabled
    assert production.introspection_enabled
    dev = Settings(env="dev", graphiql=False, introspection=False)
    assert not dev.graphiql_enabled
    assert not dev.introspection_enabled


def test_graphiql_override_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEYSH_GRAPHIQL", "false")
    assert not Settings(env="dev").graphiql_enabled


def test_metrics_are_off_in_production_until_a_token_is_set() -> None:
    assert not Settings(**PRODUCTION).metrics_enabled
    assert Settings(**PRODUCTION, metrics_token="mt-Q7v2Lx9Rk4Tz8Wp3Hs6").metrics_enabled
    assert Settings(env="dev").metrics_enabled
    assert Settings(env="test").metrics_enabled


@pytest.mark.parametrize("token", ["changeme", "<metrics token>", "short-token-15c"])
def test_a_placeholder_or_short_metrics_token_is_refused_in_production(token: str) -> None:
    message = refusal(metrics_token=token)
    assert "HEYSH_METRICS_TOKEN" in message
    assert token not in message


@pytest.mark.parametrize("address", ["localhost:9464", "127.0.0.1", "::1:9464", "10.0.0.1:0"])
def test_the_worker_metrics_address_must_be_ip_and_port(address: str) -> None:
    with pytest.raises(ValueError, match="HEYSH_WORKER_METRICS_ADDRESS"):
        Settings(env="test", worker_metrics_address=address)
    assert Settings(env="test", worker_metrics_address="[::1]:9464").worker_metrics_address
