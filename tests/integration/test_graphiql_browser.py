"""GraphiQL in a real browser, with no CDN: headless Chromium opens the api's page, every file it
loads comes from the api itself, and one token serves queries (HTTP) and subscriptions (WebSocket).

The api runs under uvicorn on a loopback port; Debian's chromium is driven by playwright-core
(tests/browser/graphiql.mjs, installed by scripts/bootstrap.sh with `npm ci`). Each step's
screenshot is kept under test-artifacts/graphiql-browser/<test>/ (gitignored) and its path printed.

A real ingestion's progress is watched through ``subscription workflowRun`` in the page: every
event the page was sent is in ``run.websockets``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from heysh.auth import mint_dev_token
from heysh.config import Settings
from heysh.local.users import user_id_for
from tests.support.documents import active_domain, add_document, fixture_text
from tests.support.graphql import GraphQLClient, gateway
from tests.support.live_api import serve_api

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = ROOT / "tests" / "browser"
ARTIFACTS = ROOT / "test-artifacts" / "graphiql-browser"
CHROMIUM = os.environ.get("HEYSH_CHROMIUM", "/usr/bin/chromium")
USER = "graphiql-browser"


@dataclass(frozen=True)
class GraphiQLStep:
    """One operation typed into GraphiQL and run; done when the response pane shows ``until``."""

    name: str
    query: str
    until: Sequence[str]
    timeout_seconds: float = 30


def subscription_step(
    name: str, query: str, *, until: Sequence[str], timeout_seconds: float = 60
) -> GraphiQLStep:
    """A subscription, done when the pane (which shows the latest event) shows ``until``."""
    return GraphiQLStep(name, query, until, timeout_seconds)


@dataclass(frozen=True)
class GraphiQLRun:
    steps: list[dict[str, Any]]
    requests: list[str]  # every URL the page requested
    websockets: list[dict[str, Any]]  # {url, sent, received}: frames as JSON, token redacted
    errors: list[str]  # console errors (CSP violations among them), page errors, timed-out steps

    def response(self, name: str) -> str:
        return str(next(step["response"] for step in self.steps if step["name"] == name))

    def frames_received(self) -> list[dict[str, Any]]:
        return [frame for ws in self.websockets for frame in ws["received"]]


def origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return scheme, parts.hostname, parts.port


def elsewhere(run: GraphiQLRun, api_url: str) -> list[str]:
    """Every request and WebSocket of the page that went anywhere but the api's origin."""
    urls = run.requests + [ws["url"] for ws in run.websockets]
    return [url for url in urls if not url.startswith("data:") and origin(url) != origin(api_url)]


async def run_in_graphiql(
    url: str, token: str, steps: Sequence[GraphiQLStep], artifacts: Path
) -> GraphiQLRun:
    """Open GraphiQL at ``url`` in headless Chromium, give ``token``, and run ``steps`` in order.

    Each step's screenshot is saved as ``artifacts/<step name>.png``.
    """
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), (
        "playwright-core is not installed: run scripts/bootstrap.sh (npm ci in tests/browser)"
    )
    assert shutil.which(CHROMIUM), f"{CHROMIUM} not found: run scripts/bootstrap.sh (apt chromium)"
    spec = {
        "url": url,
        "chromium": CHROMIUM,
        "screenshotDir": str(artifacts),
        "steps": [
            {
                "name": step.name,
                "query": step.query,
                "until": list(step.until),
                "timeoutMs": int(step.timeout_seconds * 1000),
            }
            for step in steps
        ],
    }
    node = await asyncio.create_subprocess_exec(
        "node",
        str(BROWSER_DIR / "graphiql.mjs"),
        cwd=BROWSER_DIR,
        env={**os.environ, "GRAPHIQL_TOKEN": token},  # not argv: no token in a process listing
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(node.communicate(json.dumps(spec).encode()), 180)
    finally:
        if node.returncode is None:  # timed out: leave no browser behind
            node.kill()
            await node.wait()
    assert node.returncode == 0, stderr.decode()
    run = GraphiQLRun(**json.loads(stdout))
    for step in run.steps:
        print(f"GraphiQL screenshot ({step['name']}): {step['screenshot']}")
    return run


@pytest.fixture(scope="module")
async def graphiql_url(settings: Settings) -> AsyncIterator[str]:
    async with serve_api(settings) as url:
        yield url


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """An empty folder for this test's screenshots, kept after the run."""
    folder = ARTIFACTS / str(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


async def test_graphiql_runs_a_query_with_the_token_and_loads_nothing_from_another_origin(
    graphiql_url: str, settings: Settings, artifacts: Path
) -> None:
    token = mint_dev_token(settings, user_id_for(USER))
    run = await run_in_graphiql(
        graphiql_url,
        token,
        [GraphiQLStep("viewer", "{ viewer { id } }", until=[user_id_for(USER)])],
        artifacts,
    )

    assert not elsewhere(run, graphiql_url)
    assert not run.errors  # CSP violations and failed loads among them
    assert json.loads(run.response("viewer")) == {"data": {"viewer": {"id": user_id_for(USER)}}}
    # GraphiQL's own files came from the api: the page did load them (and nothing else did).
    loaded = {urlsplit(url).path.rsplit("/", 1)[-1] for url in run.requests}
    assert {"graphiql.min.js", "react.production.min.js", "graphql-ws.min.js"} <= loaded
    assert (artifacts / "viewer.png").stat().st_size > 0


async def test_a_runs_live_progress_streams_into_graphiql_over_the_websocket(
    api: GraphQLClient, graphiql_url: str, settings: Settings, artifacts: Path
) -> None:
    token = mint_dev_token(settings, user_id_for(USER))
    domain = await active_domain(api, USER, "Watched in GraphiQL")
    text = "\n\n".join(fixture_text("curie.md") for _ in range(6))
    added = await add_document(api, USER, domain, "curie", text)
    query = (
        f'subscription {{ workflowRun(id: "{added["run"]["id"]}") '
        "{ seq stage status progress message } }"
    )
    run = await run_in_graphiql(
        graphiql_url,
        token,
        [subscription_step("progress", query, until=['"COMPLETED"', '"run completed"'])],
        artifacts,
    )

    assert not elsewhere(run, graphiql_url)
    assert not run.errors
    [ws] = run.websockets
    assert urlsplit(ws["url"]).path == "/graphql"
    assert ws["sent"][0] == {
        "type": "connection_init",
        "payload": {"Authorization": "Bearer <token>"},  # the page's token, redacted by the script
    }
    assert ws["received"][0] == {"type": "connection_ack"}
    subscribe = ws["sent"][1]
    assert subscribe["type"] == "subscribe"
    events = [
        frame["payload"]["data"]["workflowRun"]
        for frame in ws["received"]
        if frame.get("id") == subscribe["id"] and frame["type"] == "next"
    ]
    # Every event of the run reached the page, in order, ending with the run's completion,
    # which is what the response pane shows last (the screenshot keeps it).
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"] == "COMPLETED"
    assert {"chunk", "embed", "graph"} <= {e["stage"] for e in events}
    assert '"run completed"' in run.response("progress")
    assert (artifacts / "progress.png").stat().st_size > 0


async def test_a_subscription_without_a_token_is_refused_at_once_with_a_message_saying_why(
    graphiql_url: str, artifacts: Path
) -> None:
    run = await run_in_graphiql(
        graphiql_url,
        "",
        [subscription_step("refused", "subscription { __typename }", until=["4403 Forbidden"])],
        artifacts,
    )

    assert not run.errors
    assert "give a valid token" in run.response("refused")
    # One connection_init and a close: a refused token is not retried.
    [ws] = run.websockets
    assert ws["sent"] == [{"type": "connection_init", "payload": {}}]
    assert ws["received"] == []


async def test_graphiql_files_are_typed_and_cacheable_and_are_404_with_graphiql_off(
    settings: Settings,
) -> None:
    async with gateway(settings) as opened:
        page = await opened.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-cache"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = [url for url in urls if url.startswith("/graphiql/assets/")]
        assert sorted(set(urls) - set(assets)) == ["data:,"]  # the empty favicon, nothing else
        by_name = {url.rsplit("/", 1)[-1]: url for url in assets}
        script = await opened.http.get(by_name["graphiql.min.js"])
        style = await opened.http.get(by_name["graphiql.min.css"])
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert style.headers["content-type"] == "text/css; charset=utf-8"
        assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert script.headers["content-encoding"] == "gzip"
        assert script.content.startswith(b"!function(e,t)")  # the UMD build, unzipped by httpx
        # Only the files the page loads: nothing else in web/graphiql is reachable.
        folder = by_name["graphiql.min.js"].rsplit("/", 1)[0]
        for other in ("index.html", "package.json", "collect.mjs", "..%2Fpackage.json"):
            assert (await opened.http.get(f"{folder}/{other}")).status_code == 404

    closed = settings.model_copy(update={"graphiql": False})
    async with gateway(closed) as client:
        assert (await client.http.get(by_name["graphiql.min.js"])).status_code == 404
        assert (await client.http.get(by_name["heysh-graphiql.js"])).status_code == 404
