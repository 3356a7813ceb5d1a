"""Live run progress over real WebSockets (gql, both protocols), served from Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql.transport.exceptions import TransportError, TransportQueryError, TransportServerError
from strawberry.relay import GlobalID

from heysh.config import Settings
from heysh.hub import RunHub, SubscriberTooSlowError
from heysh.local.users import user_id_for
from heysh.services import Services
from heysh.stores.runs import RunStore
from heysh.workflows.progress import RunProgress
from tests.integration.test_upload_memory import free_port
from tests.support.documents import (
    active_domain,
    add_document,
    add_member,
    fixture_text,
    raw_id,
    wait_document,
)
from tests.support.graphql import GraphQLClient, gateway
from tests.support.live_api import api_environment, serve_api
from tests.support.subscriptions import PROTOCOLS, close_code, run_events, ws_session
from tests.support.tokens import user_token

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

OWNER = "sue-subscriber"
FORBIDDEN = 4403  # graphql-transport-ws: connection_init refused, or the token expired
REMOVE = """mutation($d: ID!, $u: ID!) { removeDomainMember(domainId: $d, userId: $u) {
  __typename } }"""


@pytest.fixture(scope="module")
async def live(settings: Settings, worker: None) -> AsyncIterator[str]:
    async with serve_api(settings) as url:
        yield url


@pytest.fixture
async def idle_api(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """An api whose workflows wait on a queue no worker polls (until a test starts one)."""
    own = settings.model_copy(update={"task_queue": f"idle-{uuid.uuid4().hex[:8]}"})
    async with gateway(own) as client:
        yield client


def token(settings: Settings, user: str, ttl: int = 3600) -> str:
    return user_token(settings, user_id_for(user), ttl_seconds=ttl)


def long_text(copies: int) -> str:
    return "\n\n".join(f"## Part {i}\n\n{fixture_text('curie.md')}" for i in range(copies))


async def drain(events: AsyncIterator[Any]) -> None:
    async for _ in events:
        pass


def plain(events: list[dict[str, Any]]) -> list[tuple[int, str, str, str]]:
    return [(e["seq"], e["stage"], e["status"], e["message"]) for e in events]


async def recorded(services: Services, run_gid: str) -> list[tuple[int, str, str, str]]:
    rows = await services.runs.events(raw_id(run_gid), 0)
    return [(r.seq, r.stage, r.status, r.message) for r in rows]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_real_ingestion_streams_its_events_in_order_and_ends_completed(
    api: GraphQLClient, live: str, settings: Settings, services: Services, protocol: str
) -> None:
    domain = await active_domain(api, OWNER, f"Streamed over {protocol}")
    added = await add_document(api, OWNER, domain, "long", long_text(8))
    async with ws_session(live, token(settings, OWNER), protocol) as session:
        events = await run_events(session, added["run"]["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert (events[-1]["status"], events[-1]["run"]["status"]) == ("COMPLETED", "COMPLETED")
    assert plain(events) == await recorded(services, added["run"]["id"])
    assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)


async def test_a_finished_run_replays_its_events_with_no_worker_running(
    settings: Settings, services: Services, stack: Any, idle_api: GraphQLClient
) -> None:
    from tests.integration.test_durability import worker_process

    # The domain is created and the document processed by a worker process of the idle queue,
    # which is then stopped: the replay needs Postgres only.
    worker = worker_process(stack, idle_api.settings.task_queue)
    try:
        domain_id = await active_domain(idle_api, OWNER, "Replayed after the worker stopped")
        added = await add_document(idle_api, OWNER, domain_id, "curie", fixture_text("curie.md"))
        document = await wait_document(idle_api, OWNER, added["document"]["id"])
        assert document["status"] == "READY"
    finally:
        worker.terminate()
        worker.wait(20)
    async with serve_api(idle_api.settings) as url:
        for protocol in PROTOCOLS:
            async with ws_session(url, token(settings, OWNER), protocol) as session:
                events = await run_events(session, added["run"]["id"])
            assert plain(events) == await recorded(services, added["run"]["id"])
            assert events[-1]["status"] == "COMPLETED"
            async with ws_session(url, token(settings, OWNER), protocol) as session:
                tail = await run_events(session, added["run"]["id"], after=len(events) - 2)
            assert plain(tail) == plain(events)[-2:]


async def test_an_event_recorded_for_one_api_reaches_a_subscriber_on_another(
    settings: Settings, services: Services, live: str
) -> None:
    async with gateway(settings) as first, serve_api(settings) as second:
        domain = await active_domain(first, OWNER, "Two apis")
        added = await add_document(first, OWNER, domain, "long", long_text(6))
        async with ws_session(second, token(settings, OWNER), PROTOCOLS[0]) as session:
            events = await run_events(session, added["run"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    assert plain(events) == await recorded(services, added["run"]["id"])


async def test_another_users_run_is_refused_exactly_like_an_unknown_one(
    api: GraphQLClient, live: str, settings: Settings
) -> None:
    domain = await active_domain(api, OWNER, "Private runs")
    added = await add_document(api, OWNER, domain, "curie", fixture_text("curie.md"))
    unknown = str(GlobalID("WorkflowRun", f"process-document-{uuid.uuid4()}"))
    answers = []
    for run_id in (added["run"]["id"], unknown):
        async with ws_session(live, token(settings, "nosy-neighbour"), PROTOCOLS[0]) as session:
            with pytest.raises(TransportQueryError) as refused:
                await run_events(session, run_id)
        answers.append(refused.value.errors)
    assert answers[0] == answers[1]
    assert answers[0][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_bad_or_expired_token_gets_no_subscription(live: str, settings: Settings) -> None:
    run = str(GlobalID("WorkflowRun", "x"))
    # Expired past the verifier's clock-skew leeway: refused at connection_init. Expired within
    # it: accepted, then closed at once, as any connection is when its token expires.
    for bad in ("not-a-token", token(settings, OWNER, ttl=-600), token(settings, OWNER, ttl=-1)):
        for protocol in PROTOCOLS:
            with pytest.raises(TransportError) as refused:
                async with ws_session(live, bad, protocol) as session:
                    await run_events(session, run)
            legacy_refusal = isinstance(
                refused.value, TransportServerError
            ) and "'code': 'UNAUTHENTICATED'" in str(refused.value)
            assert close_code(refused.value) == FORBIDDEN or (
                protocol == "graphql-ws" and legacy_refusal
            ), (protocol, refused.value)


async def test_a_connection_is_closed_when_its_token_expires(
    api: GraphQLClient, idle_api: GraphQLClient, live: str, settings: Settings
) -> None:
    domain = await active_domain(api, OWNER, "Expiring tokens")
    added = await add_document(idle_api, OWNER, domain, "never run", "It waits for a worker.")
    short = token(settings, OWNER, ttl=3)
    started = time.monotonic()
    with pytest.raises(TransportError) as closed:
        async with ws_session(live, short, PROTOCOLS[0]) as session:
            await asyncio.wait_for(run_events(session, added["run"]["id"]), 30)
    assert time.monotonic() - started < 25
    assert close_code(closed.value) == FORBIDDEN


async def test_subscriptions_past_the_per_connection_cap_are_refused(
    api: GraphQLClient, idle_api: GraphQLClient, settings: Settings
) -> None:
    domain = await active_domain(api, OWNER, "Capped")
    added = await add_document(idle_api, OWNER, domain, "never run", "It waits for a worker.")
    capped = settings.model_copy(update={"max_subscriptions_per_connection": 2})
    async with (
        serve_api(capped) as url,
        ws_session(url, token(settings, OWNER), PROTOCOLS[0]) as session,
    ):
        held = [asyncio.create_task(run_events(session, added["run"]["id"])) for _ in range(2)]
        await asyncio.sleep(1)
        with pytest.raises(TransportQueryError) as refused:
            await asyncio.wait_for(run_events(session, added["run"]["id"]), 10)
        assert refused.value.errors[0]["message"] == "Subscription limit reached"
        assert not any(task.done() for task in held)  # the two held go on
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)


async def test_a_removed_member_loses_the_subscription(
    api: GraphQLClient, idle_api: GraphQLClient, live: str, settings: Settings
) -> None:
    domain = await active_domain(api, OWNER, "Membership changes")
    await add_member(api, OWNER, domain, "val-viewer", "VIEWER")
    added = await add_document(idle_api, OWNER, domain, "never run", "It waits for a worker.")
    async with ws_session(live, token(settings, "val-viewer"), PROTOCOLS[0]) as session:
        watching = asyncio.create_task(run_events(session, added["run"]["id"]))
        await asyncio.sleep(1)
        assert not watching.done()
        variables = {"d": domain, "u": user_id_for("val-viewer")}
        removed = await api.data(REMOVE, variables, user=OWNER)
        assert removed["removeDomainMember"]["__typename"] == "RemoveDomainMemberSuccess"
        with pytest.raises(TransportQueryError) as ended:
            await asyncio.wait_for(watching, 15)
    assert ended.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_two_hundred_subscribers_share_one_read_per_event(
    api: GraphQLClient,
    idle_api: GraphQLClient,
    live: str,
    settings: Settings,
    services: Services,
    stack: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.integration.test_durability import worker_process

    domain = await active_domain(api, OWNER, "Two hundred watchers")
    added = await add_document(idle_api, OWNER, domain, "long", long_text(4))
    reads: list[str] = []
    original = RunStore.events

    async def counted(self: RunStore, run_id: str, after: int, limit: int = 1000) -> Any:
        reads.append(run_id)
        return await original(self, run_id, after, limit)

    monkeypatch.setattr(RunStore, "events", counted)
    async with ws_session(live, token(settings, OWNER), PROTOCOLS[0]) as session:
        watchers = [asyncio.create_task(run_events(session, added["run"]["id"])) for _ in range(10)]
        sessions = []
        for _ in range(19):  # 19 more connections of 10 subscriptions each
            opened = ws_session(live, token(settings, OWNER), PROTOCOLS[0])
            sessions.append(opened)
            more = await opened.__aenter__()
            watchers += [
                asyncio.create_task(run_events(more, added["run"]["id"])) for _ in range(10)
            ]
        await asyncio.sleep(2)
        worker = worker_process(stack, idle_api.settings.task_queue)
        try:
            results = await asyncio.wait_for(asyncio.gather(*watchers), 300)
        finally:
            worker.terminate()
            worker.wait(20)
            for opened in sessions:
                await opened.__aexit__(None, None, None)
    assert len(results) == 200
    expected = await recorded(services, added["run"]["id"])
    assert all(plain(events) == expected for events in results)
    # One read when the first subscriber came, then at most one per event recorded.
    run_reads = [r for r in reads if r == raw_id(added["run"]["id"])]
    assert len(run_reads) <= 1 + len(expected)


async def test_a_subscriber_that_falls_behind_is_ended_and_the_others_are_not(
    api: GraphQLClient, idle_api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, OWNER, "Slow readers")
    added = await add_document(idle_api, OWNER, domain, "never run", "It waits for a worker.")
    run_id = raw_id(added["run"]["id"])
    run = await services.runs.run(run_id)
    assert run is not None
    hub = RunHub(services.runs, services.domain_events, services.postgres, queue_limit=3)
    user = uuid.UUID(user_id_for(OWNER))
    slow = hub.events(run, user, 0)
    fast = hub.events(run, user, 0)
    progress = RunProgress.planned("PROCESS_DOCUMENT", ["chunk"], "2026-11-27T00:00:00+00:00")
    for i in range(8):
        progress.begin("chunk", f"2026-11-27T00:00:{i:02d}+00:00")
    first_slow = asyncio.create_task(anext(slow))  # both subscribed, backlog empty
    first_fast = asyncio.create_task(anext(fast))
    await asyncio.sleep(0.5)
    fast_seen = []
    for event in progress.events:
        await services.runs.record(run_id, progress, [event])
        await hub.notify("heysh_run_events", f"{run_id} {event.seq}")
        if not fast_seen:
            fast_seen.append((await first_fast)[0].seq)
        else:
            fast_seen.append((await anext(fast))[0].seq)
    assert fast_seen == [e.seq for e in progress.events]
    await first_slow  # its first event, then it stopped reading while 8 more came
    with pytest.raises(SubscriberTooSlowError):
        await drain(slow)
    assert hub.subscriber_count == 1
    await fast.aclose()
    assert hub.subscriber_count == 0


def api_process(stack: Any, settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **api_environment(stack, settings, port, settings.task_queue)}
    return subprocess.Popen([sys.executable, "-m", "heysh", "api"], env=env)


async def serving(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url.replace("/graphql", "/healthz"))).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"no api at {url}")


async def test_a_subscriber_resumes_after_its_api_process_is_killed_with_no_gap_or_duplicate(
    api: GraphQLClient, settings: Settings, services: Services, stack: Any
) -> None:
    domain = await active_domain(api, OWNER, "Resumed")
    added = await add_document(api, OWNER, domain, "long", long_text(12))
    run_id = added["run"]["id"]
    ports = [free_port(), free_port()]
    first = api_process(stack, settings, ports[0])
    try:
        url = f"http://127.0.0.1:{ports[0]}/graphql"
        await serving(url)
        async with ws_session(url, token(settings, OWNER), PROTOCOLS[0]) as session:
            before = await run_events(session, run_id, take=3)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
    except TransportError:
        pass  # the socket dies with the process
    finally:
        if first.poll() is None:
            first.kill()
    second = api_process(stack, settings, ports[1])
    try:
        url = f"http://127.0.0.1:{ports[1]}/graphql"
        await serving(url)
        async with ws_session(url, token(settings, OWNER), PROTOCOLS[1]) as session:
            after = await run_events(session, run_id, after=before[-1]["seq"])
    finally:
        second.terminate()
        second.wait(20)
    assert plain(before + after) == await recorded(services, run_id)
    assert after[-1]["status"] == "COMPLETED"


BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"


async def test_the_reference_graphql_ws_client_receives_every_event_and_completes(
    api: GraphQLClient, live: str, settings: Settings, services: Services
) -> None:
    domain = await active_domain(api, OWNER, "Reference client")
    added = await add_document(api, OWNER, domain, "long", long_text(6))
    spec = {"url": live.replace("http://", "ws://", 1), "runId": added["run"]["id"], "after": 0}
    node = await asyncio.create_subprocess_exec(
        "node",
        str(BROWSER_DIR / "subscribe.mjs"),
        cwd=BROWSER_DIR,
        env={**os.environ, "GRAPHQL_TOKEN": token(settings, OWNER)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(node.communicate(json.dumps(spec).encode()), 180)
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert node.returncode == 0, (lines, stderr.decode())
    assert lines[-1] == {"complete": True}
    events = lines[:-1]
    assert plain(events) == await recorded(services, added["run"]["id"])
    assert events[-1]["status"] == "COMPLETED"
