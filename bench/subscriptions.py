"""Subscription benchmarks, measured in one run against a throwaway local stack.

    .venv/bin/python bench/subscriptions.py [--subscribers 1000] [--events 30] [--window 20]
                                            [--rounds 200]

The api runs as its own process (``python -m heysh api``, task queue polled by no worker, so its
runs stay idle until the bench records events for them with ``RunStore.record``, exactly as the
workflows' activities do). The WebSocket clients are plain ``websockets`` connections speaking
graphql-transport-ws, all in this process. It prints:
1. memory per idle subscription against a bare WebSocket connection: the api process's RSS
   growth for N connections (connection_init acknowledged, no operation), then for one idle
   ``workflowRun`` subscription on each of them; bytes per connection, per connection with a
   subscription, and their ratio;
2. event latency, from just before ``RunStore.record`` commits an event (the state change) to
   the moment each subscriber's client has the message: p50 and p99 at 10 and at N subscribers
   on one run (the clients share this process, so the N figure includes their own queueing);
3. database and Temporal requests per second with N subscribers on one idle run, against the
   same window with no subscriber (the api idle): Postgres transactions (``pg_stat_database``)
   and scans of heysh's tables, the run tables apart (``pg_stat_user_tables``), and the
   Temporal dev server's frontend ``service_requests`` counter (its Prometheus metrics);
4. the read path: ``domains(first: 50)`` with 5 documents each, with and without
   ``lastRun { status stage progress }``, through the gateway (in-process, as bench/read.py):
   p50 of each and the ratio (aim: <= 1.5), and the Temporal requests made meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from asgi_lifespan import LifespanManager
from strawberry.relay import GlobalID
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heysh.app import create_app  # noqa: E402
from heysh.auth import mint_dev_token  # noqa: E402
from heysh.config import Settings  # noqa: E402
from heysh.local.stack import LocalStack  # noqa: E402
from heysh.local.users import user_id_for  # noqa: E402
from heysh.services import Services, open_services  # noqa: E402
from heysh.stores.migrations import apply_migrations  # noqa: E402
from heysh.worker import build_worker, prepare_stores  # noqa: E402
from heysh.workflows.progress import RunProgress  # noqa: E402
from tests.support.live_api import api_environment  # noqa: E402
from tests.support.query_count import StatementCounter  # noqa: E402

USER = "bench-subscriber"
DOMAINS, DOCUMENTS = 10, 5

CREATE = """mutation($name: String!) { createDomain(input: {name: $name}) {
  ... on CreateDomainSuccess { domain { id } } ... on UserError { code message } } }"""
ADD = """mutation($domain: ID!, $title: String!, $content: String!) {
  addDocument(input: {domainId: $domain, title: $title, content: $content}) {
  ... on AddDocumentSuccess { document { id } run { id } } ... on UserError { code message } } }"""
STATUS = "query($id: ID!) { domain(id: $id) { status } }"
PAGE = """query { domains(first: 50) { edges { node { documents(first: 5) { edges { node {
  title%s } } } } } } }"""
WITH_LAST_RUN = PAGE % " lastRun { status stage progress }"
WITHOUT_LAST_RUN = PAGE % ""
SUBSCRIBE = """subscription($id: ID!) { workflowRun(id: $id) {
  seq stage status progress message at run { id status } } }"""


# --- GraphQL over HTTP, in-process (setup and the read comparison) -------------------------------


class Gateway:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL failed: {body}")
        return body["data"]


@contextlib.asynccontextmanager
async def in_process(settings: Settings, token: str) -> Any:
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60
        ) as http,
    ):
        yield Gateway(http, token)


# --- the api process -----------------------------------------------------------------------------


def api_process(
    stack: LocalStack, settings: Settings, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **api_environment(stack, settings, port, settings.task_queue)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "heysh", "api"], env=env, stdout=out, stderr=out
        )


async def serving(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"the api exited with status {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"no api at {url}")


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


async def settled_rss(pid: int, within: float = 20.0) -> int:
    """The RSS once two samples a second apart differ by under 64 KiB (or after ``within``)."""
    deadline = time.monotonic() + within
    last = rss_bytes(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = rss_bytes(pid)
        if abs(now - last) < 64 * 1024:
            return now
        last = now
    return last


# --- graphql-transport-ws clients ----------------------------------------------------------------


class Arrivals:
    """When each subscriber's client had each event: (run id, seq) -> perf_counter times."""

    def __init__(self) -> None:
        self.times: dict[tuple[str, int], list[float]] = defaultdict(list)
        self.failures: list[str] = []
        self._changed = asyncio.Event()

    def add(self, run_id: str, seq: int, at: float) -> None:
        self.times[(run_id, seq)].append(at)
        self._changed.set()

    def fail(self, message: str) -> None:
        self.failures.append(message)
        self._changed.set()

    async def wait_for(self, run_id: str, seq: int, count: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while len(self.times[(run_id, seq)]) < count:
            if self.failures:
                raise RuntimeError(f"a subscription failed: {self.failures[0]}")
            left = deadline - time.monotonic()
            if left <= 0:
                got = len(self.times[(run_id, seq)])
                raise RuntimeError(f"event {seq}: {got} of {count} subscribers had it")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


class Client:
    """One WebSocket, signed in through connection_init; subscriptions' events go to Arrivals."""

    def __init__(self, ws: ClientConnection, arrivals: Arrivals) -> None:
        self.ws = ws
        self.arrivals = arrivals
        self.runs: dict[str, str] = {}  # operation id -> raw run id
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str, arrivals: Arrivals) -> Client:
        ws = await connect(
            url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            ping_interval=None,
            open_timeout=60,
        )
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"connection_init refused: {ack}")
        return cls(ws, arrivals)

    async def subscribe(self, run_gid: str) -> None:
        op = str(len(self.runs) + 1)
        self.runs[op] = GlobalID.from_id(run_gid).node_id
        payload = {"query": SUBSCRIBE, "variables": {"id": run_gid}}
        await self.ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))

    async def unsubscribe_all(self) -> None:
        for op in list(self.runs):
            await self.ws.send(json.dumps({"id": op, "type": "complete"}))

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                at = time.perf_counter()
                message = json.loads(raw)
                kind, op = message.get("type"), message.get("id")
                if kind == "next" and not message["payload"].get("errors"):
                    seq = message["payload"]["data"]["workflowRun"]["seq"]
                    self.arrivals.add(self.runs[op], seq, at)
                elif kind in ("next", "error", "complete"):
                    self.arrivals.fail(json.dumps(message)[:300])

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


async def open_clients(url: str, token: str, arrivals: Arrivals, count: int) -> list[Client]:
    limit = asyncio.Semaphore(50)  # connect in waves: the api accepts, then verifies each token

    async def one() -> Client:
        async with limit:
            return await Client.open(url, token, arrivals)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_clients(clients: list[Client]) -> None:
    limit = asyncio.Semaphore(100)

    async def one(client: Client) -> None:
        async with limit:
            with contextlib.suppress(Exception):
                await client.close()

    await asyncio.gather(*(one(c) for c in clients))


# --- run events, recorded as the workflows record them -------------------------------------------


class LiveRun:
    """A run nobody works on; ``emit`` records its next event through ``RunStore.record``."""

    def __init__(self, services: Services, run_gid: str) -> None:
        self.services = services
        self.gid = run_gid
        self.id = GlobalID.from_id(run_gid).node_id
        self.progress = RunProgress.planned("PROCESS_DOCUMENT", ["chunk"], now())
        self.sent = 0

    async def check_idle(self) -> None:
        if await self.services.runs.events(self.id, 0):
            raise RuntimeError(f"run {self.id} already has events: is a worker polling its queue?")

    async def emit(self) -> tuple[int, float]:
        """Record the next event; its seq and the perf_counter time just before the record."""
        if self.sent:
            self.progress.begin("chunk", now(), total=100)
        event = self.progress.events[-1]
        started = time.perf_counter()
        await self.services.runs.record(self.id, self.progress, [event])
        self.sent += 1
        return event.seq, started


def now() -> str:
    return datetime.now(UTC).isoformat()


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def latency(
    run: LiveRun, arrivals: Arrivals, subscribers: int, events: int, api_pid: int
) -> str:
    seq, _ = await run.emit()  # warm-up: also proves every subscriber is registered
    await arrivals.wait_for(run.id, seq, subscribers)
    samples: list[float] = []
    first: list[float] = []  # per event: its first subscriber's wait (notify, read, one send)
    api_cpu, own_cpu = cpu_seconds(api_pid), time.process_time()
    for _ in range(events):
        await asyncio.sleep(0.2)  # spaced out: one event in flight at a time
        seq, started = await run.emit()
        await arrivals.wait_for(run.id, seq, subscribers)
        waits = [at - started for at in arrivals.times[(run.id, seq)]]
        samples += waits
        first.append(min(waits))
    api_cpu = (cpu_seconds(api_pid) - api_cpu) / events
    own_cpu = (time.process_time() - own_cpu) / events
    return (
        f"  {subscribers:>6,} subscribers   p50 {statistics.median(samples) * 1000:7.1f} ms"
        f"   p99 {percentile(samples, 99) * 1000:7.1f} ms   ({events} events, one at a time)\n"
        f"      the first subscriber of each event: p50 {statistics.median(first) * 1000:.1f} ms;"
        f" CPU per event: api process {api_cpu * 1000:.0f} ms, this process (clients,"
        f" recorder) {own_cpu * 1000:.0f} ms"
    )


# --- database and Temporal request counters ------------------------------------------------------

PG_COUNTERS = """select
  (select xact_commit + xact_rollback from pg_stat_database where datname = current_database()),
  (select coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint from pg_stat_user_tables
    where schemaname = 'heysh'),
  (select coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint from pg_stat_user_tables
    where schemaname = 'heysh' and relname in ('run_events', 'workflow_runs')),
  (select coalesce(sum(autovacuum_count + autoanalyze_count), 0)::bigint from pg_stat_all_tables)"""
SAMPLE = re.compile(r"^service_requests\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
# Long polls and heartbeats of the dev server's own system workers (about 1/s with no client
# connected at all); neither the api nor the bench runs a worker while it is measured.
SERVER_WORKERS = frozenset(
    {"PollActivityTaskQueue", "PollWorkflowTaskQueue", "RecordWorkerHeartbeat"}
)


@dataclass(frozen=True)
class Window:
    seconds: float
    transactions: float  # the bench's own counter read taken off
    scans: float  # of heysh's tables
    run_scans: float  # of heysh.run_events and heysh.workflow_runs
    vacuums: float  # autovacuum and autoanalyze runs, which commit transactions of their own
    temporal: dict[str, float]  # frontend requests per operation, server workers' excluded
    server_workers: float

    def line(self, label: str) -> str:
        per_s = self.seconds
        reads = sum(self.temporal.values())
        detail = ", ".join(f"{op} {n:g}" for op, n in sorted(self.temporal.items())) or "none"
        return (
            f"  {label}\n"
            f"    Postgres  {self.transactions / per_s:6.2f} transactions/s (autovacuum/analyze"
            f" runs meanwhile: {self.vacuums:g}), {self.scans / per_s:6.2f} scans/s of heysh"
            f" tables, {self.run_scans / per_s:6.2f} of the run tables\n"
            f"    Temporal  {reads / per_s:6.2f} requests/s ({detail}; the dev server's own"
            f" workers' polls and heartbeats, excluded: {self.server_workers / per_s:.2f}/s)"
        )


class Counters:
    def __init__(self, database_url: str, metrics_url: str) -> None:
        self.database_url = database_url
        self.metrics_url = metrics_url

    async def postgres(self) -> tuple[int, ...]:
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True
        ) as conn:
            cur = await conn.execute(PG_COUNTERS)
            row = await cur.fetchone()
            assert row is not None
            return tuple(int(value) for value in row)

    async def temporal(self) -> dict[str, float]:
        """``service_requests`` of the dev server's frontend (the requests clients send), per
        operation."""
        async with httpx.AsyncClient() as http:
            text = (await http.get(self.metrics_url)).text
        totals: dict[str, float] = defaultdict(float)
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if match:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
                if labels.get("service_name") == "frontend":
                    totals[labels.get("operation", "?")] += float(match.group("value"))
        return totals

    async def window(self, seconds: float) -> Window:
        """What reached Postgres and Temporal over ``seconds``, while the bench sends nothing."""
        # A backend reports its counts within ~10 s of going idle: let earlier work land first.
        await asyncio.sleep(12)
        pg0 = await self.postgres()
        temporal0 = await self.temporal()
        await asyncio.sleep(seconds)
        pg1 = await self.postgres()
        temporal1 = await self.temporal()
        xacts, scans, run_scans, vacuums = (
            after - before for after, before in zip(pg1, pg0, strict=True)
        )
        ops = {op: temporal1[op] - temporal0.get(op, 0.0) for op in temporal1}
        return Window(
            seconds,
            transactions=xacts - 1,  # the first counter read's own commit
            scans=scans,
            run_scans=run_scans,
            vacuums=vacuums,
            temporal={op: n for op, n in ops.items() if n and op not in SERVER_WORKERS},
            server_workers=sum(n for op, n in ops.items() if op in SERVER_WORKERS),
        )


# --- the read comparison -------------------------------------------------------------------------


async def timings(work: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    await work()  # warm caches and connections once
    measured = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()
        measured.append(time.perf_counter() - started)
    return measured


async def read_comparison(gateway: Gateway, counters: Counters, rounds: int) -> None:
    print(
        f"4. domains(first: 50) x documents(first: 5) ({DOMAINS} domains x {DOCUMENTS} documents,"
        " each with a queued run), through the gateway"
    )
    page = (await gateway.data(WITH_LAST_RUN))["domains"]["edges"]
    documents = [d["node"] for e in page for d in e["node"]["documents"]["edges"]]
    if len(documents) != DOMAINS * DOCUMENTS or not all(d["lastRun"] for d in documents):
        raise RuntimeError(f"the page is not {DOMAINS} x {DOCUMENTS} documents with runs: {page}")
    counter = StatementCounter()
    try:
        with counter.counting() as sent_with:
            await gateway.data(WITH_LAST_RUN)
        with counter.counting() as sent_without:
            await gateway.data(WITHOUT_LAST_RUN)
    finally:
        counter.close()
    temporal0 = await counters.temporal()
    with_run: list[float] = []
    without_run: list[float] = []
    for _ in range(4):  # interleaved, so both see the same machine state
        with_run += await timings(lambda: gateway.data(WITH_LAST_RUN), rounds // 4)
        without_run += await timings(lambda: gateway.data(WITHOUT_LAST_RUN), rounds // 4)
    temporal1 = await counters.temporal()
    ops = {op: temporal1[op] - temporal0.get(op, 0.0) for op in temporal1}
    ops = {op: n for op, n in ops.items() if n and op not in SERVER_WORKERS}
    detail = ", ".join(f"{op} {n:g}" for op, n in sorted(ops.items())) or "none"
    w50, o50 = statistics.median(with_run), statistics.median(without_run)
    for label, p50, times, sent in (
        ("with lastRun", w50, with_run, sent_with),
        ("without lastRun", o50, without_run, sent_without),
    ):
        print(
            f"  {label:<18} p50 {p50 * 1000:7.2f} ms   ({len(times)} reads;"
            f" {sent.count('postgres')} Postgres statements per page,"
            f" {sent.count('postgres check')} pool checks, {sent.count('neo4j')} Neo4j)"
        )
    print(f"  ratio with/without: p50 {w50 / o50:.2f}x (aim <= 1.5)")
    print(f"  Temporal requests while both ran (server workers' polls excluded): {detail}")


# --- the run -------------------------------------------------------------------------------------


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"{needed} file descriptors needed; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))  # the api inherits it


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def setup(
    settings: Settings, idle: Settings, services: Services, token: str
) -> tuple[list[str], list[str]]:
    """Domains made ACTIVE by an in-process worker, then documents whose runs stay queued."""
    domains = []
    async with build_worker(services), in_process(settings, token) as gateway:
        for i in range(DOMAINS):
            created = (await gateway.data(CREATE, {"name": f"Bench {i}"}))["createDomain"]
            domains.append(created["domain"]["id"])
        deadline = time.monotonic() + 300
        for domain in domains:
            while (await gateway.data(STATUS, {"id": domain}))["domain"]["status"] != "ACTIVE":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"domain {domain} is not ACTIVE")
                await asyncio.sleep(0.3)
    runs = []
    async with in_process(idle, token) as gateway:
        for domain in domains:
            for j in range(DOCUMENTS):
                variables = {"domain": domain, "title": f"Doc {j}", "content": f"Text {j}."}
                added = (await gateway.data(ADD, variables))["addDocument"]
                runs.append(added["run"]["id"])
    return domains, runs


HEADER = """\
What each figure is, and what it is measured against:
1. memory: the api process's RSS growth (VmRSS) per WebSocket, for N bare connections
   (connection_init acknowledged, no operation), then after one idle workflowRun subscription
   on each; ratio = (connection + subscription) / bare connection.
2. latency: from just before RunStore.record commits an event (as a workflow activity does) to
   when each subscriber's client has the message; 10 and N subscribers on one run. All clients
   live in this one process, so at N their own message handling is part of the figure.
3. requests/s over a quiet window with N subscribers on one idle run, against the same window
   with no subscriber: Postgres transactions (pg_stat_database, every backend including
   autovacuum, less the bench's own counter read; pg_stat_statements is not loaded) and index
   or sequential scans of heysh's tables (pg_stat_user_tables); Temporal requests (the dev
   server's frontend service_requests metric, less its own system workers' long polls).
4. a domains page with documents' lastRun vs the same page without it, through the gateway
   in this process (as bench/read.py): p50 of each, interleaved, and their ratio."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000, help="the large size (N)")
    parser.add_argument("--events", type=int, default=30, help="timed events per size")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of each quiet window")
    parser.add_argument("--rounds", type=int, default=200, help="timed reads per side in 4.")
    parser.add_argument(
        "--only", choices=("read",), help="run only 4., the read path (no api process)"
    )
    args = parser.parse_args()
    n = args.subscribers
    raise_file_limit(2 * n + 1024)  # the clients' sockets here, the api's in its process

    print(HEADER)
    print(f"load average (1, 5, 15 min) at start: {loadavg()} on {os.cpu_count()} cores")
    root = Path(tempfile.mkdtemp(prefix="heysh-bench-subscriptions-"))
    stack = LocalStack.for_tests(root)
    stack.start()
    api: subprocess.Popen[bytes] | None = None
    finished = False
    try:
        apply_migrations(stack.settings_env()["HEYSH_DATABASE_URL"])
        settings: Settings = stack.test_settings(
            task_queue=f"bench-subs-{uuid.uuid4().hex[:8]}",
            supabase_jwt_secret=secrets.token_urlsafe(32),
        )
        idle = settings.model_copy(update={"task_queue": f"idle-{uuid.uuid4().hex[:8]}"})
        token = mint_dev_token(settings, user_id_for(USER), ttl_seconds=6 * 3600)
        counters = Counters(
            stack.settings_env()["HEYSH_DATABASE_URL"],
            f"http://127.0.0.1:{stack.ports.temporal_metrics}/metrics",
        )
        async with open_services(settings) as services:
            await prepare_stores(services)
            _, runs = await setup(settings, idle, services, token)
            big, small = LiveRun(services, runs[0]), LiveRun(services, runs[1])
            for run in (big, small):
                await run.check_idle()

            if args.only == "read":
                # The dev server counts requests ~10 s late: let the setup's land before 4. starts.
                await asyncio.sleep(12)
                async with in_process(idle, token) as gateway:
                    await read_comparison(gateway, counters, args.rounds)
                finished = True
                return
            port = free_port()
            api = api_process(stack, idle, port, root / "api.log")
            ws_url = f"ws://127.0.0.1:{port}/graphql"
            await serving(f"http://127.0.0.1:{port}", api)
            arrivals = Arrivals()

            few = await open_clients(ws_url, token, arrivals, 10)
            handshake = few[0].ws.response
            assert handshake is not None  # set once the connection is open
            extensions = handshake.headers.get("Sec-WebSocket-Extensions") or "none"
            for client in few:
                await client.subscribe(small.gid)
            latency_few = await latency(small, arrivals, 10, args.events, api.pid)
            await close_clients(few)

            idle_window = await counters.window(args.window)

            rss0 = await settled_rss(api.pid)
            clients = await open_clients(ws_url, token, arrivals, n)
            rss1 = await settled_rss(api.pid)
            for client in clients:
                await client.subscribe(big.gid)
            rss2 = await settled_rss(api.pid)
            # One event proves all N are subscribed; the run is idle again afterwards.
            seq, _ = await big.emit()
            await arrivals.wait_for(big.id, seq, n)
            busy_window = await counters.window(args.window)
            latency_many = await latency(big, arrivals, n, args.events, api.pid)
            await close_clients(clients)
            api.terminate()
            api.wait(30)
            api = None

            bare, subscribed = (rss1 - rss0) / n, (rss2 - rss0) / n
            print(
                f"1. api process RSS growth per WebSocket, {n:,} of each"
                f" (RSS {rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} -> {rss2 / 2**20:.0f} MiB;"
                f" extensions negotiated: {extensions})"
            )
            print(f"  bare connection (acked, no operation)   {bare / 1024:8.1f} KiB")
            print(f"  connection + one idle subscription      {subscribed / 1024:8.1f} KiB")
            print(
                f"  the subscription alone                  {(subscribed - bare) / 1024:8.1f} KiB"
            )
            print(
                f"  ratio (connection + subscription) / bare connection: {subscribed / bare:.2f}x"
            )
            print("2. event latency, state change (RunStore.record) -> subscriber's client")
            print(latency_few)
            print(latency_many)
            print(f"3. database and Temporal requests per second, {args.window:g} s windows")
            print(idle_window.line("no subscriber (the api idle):"))
            print(busy_window.line(f"{n:,} subscribers on one idle run:"))

            async with in_process(idle, token) as gateway:
                await read_comparison(gateway, counters, args.rounds)
        finished = True
    finally:
        if api is not None and api.poll() is None:
            api.terminate()
            api.wait(30)
        stack.stop()
        print(f"load average (1, 5, 15 min) at end: {loadavg()}")
        if finished:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root / 'logs'} and {root / 'api.log'}")


if __name__ == "__main__":
    asyncio.run(main())
