"""Who may read the api's /metrics, and what its labels may hold (no services needed)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from heysh.app import create_app
from heysh.config import ConfigError, Settings
from heysh.telemetry.metrics import OPERATION_NAMES, ApiMetrics, RequestMetrics
from heysh.telemetry.worker_metrics import activity_metrics_interceptors, worker_runtime

METRICS_TOKEN = "mt-Q7v2Lx9Rk4Tz8Wp3Hs6"
PRODUCTION: dict[str, Any] = {
    "env": "production",
    "supabase_url": "https://abcdefghijklmnop.supabase.co",
    "supabase_jwt_secret": "Zq8vN3rT6wY1uI4oP7aS0dF2gH5jK9lX",
    "database_url": "postgresql://app:Vx9-k2Lm-Qp7@db.abcdefghijklmnop.supabase.co:5432/postgres",
    "neo4j_password": "n4j-Rk82-Tz51-Wq09",
    "weaviate_api_key": "wv-3Jd8Ks92Lq1Mz7Np",
    "temporal_api_key": "tmprl-8Hs2Kd9Lq3Mx7Pz",
}


@pytest.fixture(autouse=True)
def _no_heysh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HEYSH_"):
            monkeypatch.delenv(name)


async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: /metrics needs no backend, and neither does refusing a request.
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


@pytest.fixture
async def production_api() -> AsyncIterator[httpx.AsyncClient]:
    async for http in client(Settings(**PRODUCTION)):
        yield http


@pytest.fixture
async def guarded_api() -> AsyncIterator[httpx.AsyncClient]:
    async for http in client(Settings(**PRODUCTION, metrics_token=METRICS_TOKEN)):
        yield http


def metric_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


async def test_production_without_a_token_serves_no_metrics_and_measures_nothing(
    production_api: httpx.AsyncClient,
) -> None:
    response = await production_api.get("/metrics")
    assert response.status_code == 404
    app = create_app(Settings(**PRODUCTION))
    assert not any(m.cls is RequestMetrics for m in app.user_middleware)


async def test_production_metrics_need_the_configured_bearer_token(
    guarded_api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    missing = await guarded_api.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    other_scheme = await guarded_api.get("/metrics", headers={"Authorization": "Basic abc"})
    assert other_scheme.status_code == 401
    wrong = await guarded_api.get(
        "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN[:-1]}x"}
    )
    assert wrong.status_code == 403
    right = await guarded_api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")
    names = metric_names(right.text)
    assert "heysh_http_request_duration_seconds" in names
    # The refused scrapes were measured too, by route and status.
    assert 'route="/metrics",status="403"' in right.text
    for response in (missing, other_scheme, wrong, right):
        assert METRICS_TOKEN not in response.text
    assert METRICS_TOKEN not in caplog.text


def test_the_metrics_token_never_shows_in_settings_output() -> None:
    settings = Settings(**PRODUCTION, metrics_token=METRICS_TOKEN)
    assert METRICS_TOKEN not in repr(settings)
    assert METRICS_TOKEN not in str(settings.model_dump())


async def test_dev_and_test_serve_metrics_openly_on_the_api_port() -> None:
    for env in ("dev", "test"):
        async for http in client(Settings(env=env)):
            response = await http.get("/metrics")
            assert response.status_code == 200, env
            assert "heysh_graphql_operation_duration_seconds" in metric_names(response.text)


async def test_a_configured_token_is_required_in_dev_too() -> None:
    async for http in client(Settings(env="dev", metrics_token=METRICS_TOKEN)):
        assert (await http.get("/metrics")).status_code == 401
        authorized = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await http.get("/metrics", headers=authorized)).status_code == 200


async def test_routes_are_labelled_by_their_template_never_the_raw_url() -> None:
    async for http in client(Settings(env="test")):
        for i in range(3):
            await http.get(f"/no/such/page/{i}")
        await http.request("BREW", "/healthz")
        text = (await http.get("/metrics")).text
    assert "/no/such/page" not in text
    assert 'method="GET",route="unmatched",status="404"' in text
    assert 'method="OTHER",route="/healthz"' in text


def test_operation_names_are_bounded_in_shape_length_and_number() -> None:
    metrics = ApiMetrics(Settings(env="test"))
    assert metrics.operation_label(None) == "anonymous"
    assert metrics.operation_label('x"} 1\nevil') == "other"
    assert metrics.operation_label("a" * 65) == "other"
    assert metrics.operation_label("Search") == "Search"
    names = ["Search", *(f"Op{i}" for i in range(OPERATION_NAMES + 10))]
    labels = [metrics.operation_label(name) for name in names]
    assert labels[:OPERATION_NAMES] == names[:OPERATION_NAMES]
    assert set(labels[OPERATION_NAMES:]) == {"other"}
    assert metrics.operation_label("Search") == "Search"  # a name seen before keeps its label


def test_a_worker_without_a_metrics_address_exports_nothing_and_adds_no_interceptor() -> None:
    settings = Settings(env="test")
    assert worker_runtime(settings) is None
    assert activity_metrics_interceptors(settings) == []


def test_a_worker_metrics_address_in_use_stops_start_up_naming_the_setting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(ConfigError, match=f"HEYSH_WORKER_METRICS_ADDRESS={address}: .*in use"):
            worker_runtime(Settings(env="test", worker_metrics_address=address))
