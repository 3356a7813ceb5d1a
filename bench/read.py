"""Read-path benchmarks, each measured side by side in one run against the real local stack.

    .venv/bin/python bench/read.py [--copies 220] [--rounds 200] [--only nested|loaders|search]

A domain is filled through the gateway (createDomain, addDocument, a real worker), then it prints:
1. one nested read (a document's first 50 chunks with 5 entities each) through the GraphQL
   gateway vs the same rows fetched by direct store calls: p50 and p99 of each, and the
   gateway / direct ratio (aim: <= 1.3 at p50);
2. the entities of 100 and of 1,000 chunks, read as the DataLoader does (one statement for every
   parent) vs one statement per parent, sent concurrently as resolvers without a DataLoader
   would: time ratio (aim: >= 20 at 1,000) and the statements each sent;
3. gateway ``search`` (HYBRID) vs a direct Weaviate hybrid call for the same query, each
   embedding the query first: p50 and the ratio (aim: <= 1.3).
The gateway runs in-process behind an ASGI transport, so no network is measured on either side.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from strawberry.relay import GlobalID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heysh.app import create_app  # noqa: E402
from heysh.auth import mint_dev_token  # noqa: E402
from heysh.config import Settings  # noqa: E402
from heysh.local.stack import LocalStack  # noqa: E402
from heysh.local.users import user_id_for  # noqa: E402
from heysh.services import Services, open_services, weaviate_client  # noqa: E402
from heysh.stores.graph_values import PageSlice  # noqa: E402
from heysh.stores.migrations import apply_migrations  # noqa: E402
from heysh.worker import build_worker, prepare_stores  # noqa: E402
from tests.support.query_count import StatementCounter  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "documents"
USER = "bench-reader"

CREATE = """mutation($name: String!) { createDomain(input: {name: $name}) {
  ... on CreateDomainSuccess { domain { id } } } }"""
ADD = """mutation($domain: ID!, $content: String!) {
  addDocument(input: {domainId: $domain, title: "Bench corpus", content: $content}) {
  ... on AddDocumentSuccess { document { id } } ... on UserError { code message } } }"""
STATUS = """query($id: ID!) { node(id: $id) {
  ... on Domain { status: status } ... on Document { documentStatus: status } } }"""
NESTED = """query($id: ID!) { document(id: $id) { title chunks(first: 50) { edges { node {
  index text entities(first: 5) { edges { node { name type } } } } } } } }"""


class Gateway:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def data(self, query: str, variables: dict[str, Any]) -> Any:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL failed: {body}")
        return body["data"]

    async def wait(self, node_id: str, status: str, within: float = 900) -> None:
        deadline = time.monotonic() + within
        while True:
            node = (await self.data(STATUS, {"id": node_id}))["node"]
            found = node.get("status") or node.get("documentStatus")
            if found == status:
                return
            if found == "FAILED" or time.monotonic() > deadline:
                raise RuntimeError(f"{node_id} is {found}, not {status}")
            await asyncio.sleep(0.5)


def corpus(copies: int) -> str:
    parts = [p.read_text() for p in sorted(FIXTURES.glob("*.md"))]
    return "\n\n".join(f"## Part {i}\n\n{parts[i % len(parts)]}" for i in range(copies))


async def timings(work: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    await work()  # warm caches and connections once
    measured = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()
        measured.append(time.perf_counter() - started)
    return measured


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(name: str, values: list[float]) -> tuple[float, float]:
    p50, p99 = statistics.median(values), percentile(values, 99)
    print(f"  {name:<34} p50 {p50 * 1000:8.2f} ms   p99 {p99 * 1000:8.2f} ms")
    return p50, p99


async def nested_read(
    gateway: Gateway, services: Services, domain_id: str, document_id: str, rounds: int
) -> None:
    print("1. nested read: a document, its first 50 chunks, 5 entities of each")
    global_id = str(GlobalID("Document", document_id))
    user = uuid.UUID(user_id_for(USER))

    async def through_gateway() -> object:
        return await gateway.data(NESTED, {"id": global_id})

    async def direct() -> object:
        (document,) = await services.documents.visible(user, [uuid.UUID(document_id)])
        (chunks,) = await services.graph.chunk_pages(
            "document", [PageSlice(document_id, domain_id, None)], 51
        )
        slices = [PageSlice(c.id, domain_id, None) for c in chunks[:50]]
        return document, await services.graph.entity_pages("chunk", slices, 6)

    # Interleaved rounds, so both see the same machine state.
    gateway_times: list[float] = []
    direct_times: list[float] = []
    for _ in range(4):
        gateway_times += await timings(through_gateway, rounds // 4)
        direct_times += await timings(direct, rounds // 4)
    g50, g99 = report("GraphQL gateway", gateway_times)
    d50, d99 = report("direct store calls", direct_times)
    print(f"  ratio gateway/direct: p50 {g50 / d50:.2f}x, p99 {g99 / d99:.2f}x (aim <= 1.3 at p50)")


async def loaders_vs_per_parent(services: Services, domain_id: str, document_id: str) -> None:
    print("2. entities of N chunks: one statement for all (DataLoader) vs one per chunk")
    (chunks,) = await services.graph.chunk_pages(
        "document", [PageSlice(document_id, domain_id, None)], 1000
    )
    counter = StatementCounter()
    try:
        for parents in (100, 1000):
            if len(chunks) < parents:
                print(f"  only {len(chunks)} chunks: raise --copies for {parents} parents")
                continue
            slices = [PageSlice(c.id, domain_id, None) for c in chunks[:parents]]

            async def batched(slices: list[PageSlice] = slices) -> object:
                return await services.graph.entity_pages("chunk", slices, 6)

            async def per_parent(slices: list[PageSlice] = slices) -> object:
                return await asyncio.gather(
                    *(services.graph.entity_pages("chunk", [s], 6) for s in slices)
                )

            rounds = 20 if parents == 100 else 5
            with counter.counting() as sent_batched:
                await batched()
            with counter.counting() as sent_per_parent:
                await per_parent()
            b = statistics.median(await timings(batched, rounds))
            p = statistics.median(await timings(per_parent, rounds))
            print(
                f"  {parents:>5} parents: DataLoader {b * 1000:8.1f} ms"
                f" ({sent_batched.count('neo4j')} statement),"
                f" per parent {p * 1000:8.1f} ms ({sent_per_parent.count('neo4j')} statements),"
                f" ratio {p / b:.1f}x (aim >= 20 at 1,000)"
            )
    finally:
        counter.close()


SEARCH = """query($domain: ID!, $query: String!) {
  search(domainId: $domain, query: $query, mode: HYBRID, limit: 10, alpha: 0.5) {
    hits { score vectorScore keywordScore chunk { id text } document { title } } } }"""
QUERIES = [
    "who discovered radium and polonium",
    "the photoelectric effect and light quanta",
    "Nobel Prize in Chemistry",
    "theory of relativity published in 1905",
    "mobile radiography units in the war",
]


async def search_vs_weaviate(
    gateway: Gateway, settings: Settings, services: Services, domain_id: str, rounds: int
) -> None:
    print("3. search, HYBRID, 10 hits: gateway vs a direct Weaviate hybrid call")
    embedder = await services.query_embedder()
    client = weaviate_client(settings)
    await client.connect()
    try:
        tenant = client.collections.use(settings.weaviate_collection).with_tenant(domain_id)
        domain_gid = str(GlobalID("Domain", domain_id))
        turn = iter(range(10**9))

        async def through_gateway() -> object:
            query = QUERIES[next(turn) % len(QUERIES)]
            return await gateway.data(SEARCH, {"domain": domain_gid, "query": query})

        async def direct() -> object:
            query = QUERIES[next(turn) % len(QUERIES)]
            (vector,) = await embedder.embed([query])
            return await tenant.query.hybrid(query=query, vector=vector, alpha=0.5, limit=10)

        gateway_times: list[float] = []
        direct_times: list[float] = []
        for _ in range(4):
            gateway_times += await timings(through_gateway, rounds // 4)
            direct_times += await timings(direct, rounds // 4)
        g50, _ = report("GraphQL search", gateway_times)
        d50, _ = report("direct Weaviate hybrid", direct_times)
        print(f"  ratio gateway/direct: p50 {g50 / d50:.2f}x (aim <= 1.3)")
    finally:
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=220, help="fixture copies in the corpus")
    parser.add_argument("--rounds", type=int, default=200, help="timed reads per side")
    parser.add_argument("--only", choices=["nested", "loaders", "search"])
    args = parser.parse_args()

    stack = LocalStack.for_tests(Path(tempfile.mkdtemp(prefix="heysh-bench-read-")))
    stack.start()
    try:
        apply_migrations(stack.settings_env()["HEYSH_DATABASE_URL"])
        settings: Settings = stack.test_settings(
            task_queue=f"bench-read-{uuid.uuid4().hex[:8]}",
            supabase_jwt_secret=secrets.token_urlsafe(32),
        )
        async with open_services(settings) as services:
            await prepare_stores(services)
            app = create_app(settings)
            async with (
                build_worker(services),
                LifespanManager(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60
                ) as http,
            ):
                gateway = Gateway(http, mint_dev_token(settings, user_id_for(USER)))
                domain = (await gateway.data(CREATE, {"name": "Bench"}))["createDomain"]
                domain_gid = domain["domain"]["id"]
                await gateway.wait(domain_gid, "ACTIVE")
                text = corpus(args.copies)
                started = time.perf_counter()
                added = await gateway.data(ADD, {"domain": domain_gid, "content": text})
                document_gid = added["addDocument"]["document"]["id"]
                await gateway.wait(document_gid, "READY")
                domain_id = GlobalID.from_id(domain_gid).node_id
                document_id = GlobalID.from_id(document_gid).node_id
                counts = await services.graph.domain_counts(domain_id)
                print(
                    f"corpus: {len(text.encode()) / 1e6:.2f} MB, {counts.chunks} chunks,"
                    f" {counts.entities} entities, {counts.relationships} relationships"
                    f" (READY in {time.perf_counter() - started:.0f} s)"
                )
                if args.only in (None, "nested"):
                    await nested_read(gateway, services, domain_id, document_id, args.rounds)
                if args.only in (None, "loaders"):
                    await loaders_vs_per_parent(services, domain_id, document_id)
                if args.only in (None, "search"):
                    await search_vs_weaviate(gateway, settings, services, domain_id, args.rounds)
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
