"""Concurrent 20 MB uploads against a real api process keep it inside a 512 MB container.

The api runs as the image runs it (`heysh api`, Dockerfile.api's environment) in a process of its
own, so its resident memory can be read from /proc while eight uploads run at once: as JSON
`content`, then as multipart `file`. Each upload either succeeds, stored byte for byte, or gets the
typed, retryable TOO_MANY_UPLOADS answer. Its workflows go to a task queue nobody polls: this is
about the api, not the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from heysh.config import Settings
from heysh.local.stack import LocalStack
from heysh.services import Services
from tests.support.documents import ADD, active_domain, raw_id
from tests.support.graphql import GraphQLClient, eventually, gateway
from tests.support.images import image_config, run_image_command
from tests.support.live_api import api_environment, free_port

pytestmark = pytest.mark.integration

USER = "upload-uma"
UPLOADS = 8
SIZE = 20 * 1000 * 1000  # bytes of UTF-8 per document, just under the 20 MiB default limit
CONTAINER_BYTES = 512 * 1024 * 1024  # the production api's memory (Cloud Run)


@dataclass
class ApiProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    samples: list[int] = field(default_factory=list)

    def status(self, key: str) -> int:
        """A /proc/<pid>/status figure in bytes (VmRSS now, VmHWM the peak so far)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {key} for pid {self.process.pid}")


@pytest.fixture(scope="module")
def api_process(
    stack: LocalStack, api: GraphQLClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    image = image_config("Dockerfile.api")
    assert image.command == ["heysh", "api"]
    port = free_port()
    test_mode = api_environment(stack, api.settings, port, f"no-worker-{uuid.uuid4().hex[:8]}")
    env = {
        **os.environ,
        # The image's environment for heysh and the C allocator (its paths under /app aside) ...
        **{k: v for k, v in image.env.items() if k.startswith(("HEYSH_", "MALLOC_"))},
        # ... pointed at this stack in test mode, on a loopback port and a queue nobody polls.
        **test_mode,
    }
    log = tmp_path_factory.mktemp("api") / "api.log"
    with log.open("wb") as log_file:
        process = run_image_command(image, env, log_file)
    running = ApiProcess(f"http://127.0.0.1:{port}", process, log)
    try:
        yield running
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_healthy(api: ApiProcess) -> None:
    async def probe() -> Any:
        if api.process.poll() is not None:
            raise AssertionError(f"the api exited: {api.log.read_text()[-2000:]}")
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{api.url}/healthz")).status_code
        except httpx.TransportError:
            return None

    await eventually(probe, lambda status: status == 200, within=60)


async def sample_rss(api: ApiProcess, stop: asyncio.Event) -> None:
    while not stop.is_set():
        api.samples.append(api.status("VmRSS"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def document_text(index: int, tag: str) -> str:
    """``SIZE`` bytes of UTF-8, different for every upload; mostly ASCII with some wider text.

    One character outside Latin-1 makes CPython store the whole string at two or four bytes a
    character, so the api's parsed copy of this is as large as a JSON upload can make it.
    """
    head = f"Upload {index} of run {tag}: Marie Curie — 放射能 — 🚀\n\n"
    sentence = "Radium and polonium were isolated from pitchblende by the Curies in 1898. "
    body_size = SIZE - len(head.encode())
    return head + (sentence * (body_size // len(sentence) + 1))[:body_size]


def multipart_body(domain: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"heysh-{uuid.uuid4().hex}"
    operations = json.dumps(
        {"query": ADD, "variables": {"input": {"domainId": domain, "title": "f", "file": None}}}
    )
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        '{"0": ["variables.input.file"]}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="doc.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    )
    return head.encode() + content + f"\r\n--{boundary}--\r\n".encode(), boundary


@dataclass(frozen=True)
class Outcome:
    content: bytes
    status: int
    headers: httpx.Headers
    body: Any


async def upload(
    http: httpx.AsyncClient, api: ApiProcess, token: str, domain: str, text: str, multipart: bool
) -> Outcome:
    content = text.encode()
    headers = {"Authorization": f"Bearer {token}"}
    if multipart:
        body, boundary = multipart_body(domain, content)
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    else:
        variables = {"input": {"domainId": domain, "title": "j", "content": text}}
        body = json.dumps({"query": ADD, "variables": variables}).encode()
        headers["Content-Type"] = "application/json"
    response = await http.post(f"{api.url}/graphql", content=body, headers=headers)
    return Outcome(content, response.status_code, response.headers, response.json())


async def stored(services: Services, document_gid: str) -> tuple[str, int] | None:
    """The sha256 and UTF-8 length of what Postgres holds for the document."""
    text = await services.documents.content(uuid.UUID(raw_id(document_gid)))
    if text is None:
        return None
    data = text.encode()
    return hashlib.sha256(data).hexdigest(), len(data)


async def run_uploads(
    api_process: ApiProcess, api: GraphQLClient, domain: str, *, multipart: bool
) -> list[Outcome]:
    tag = uuid.uuid4().hex[:8]
    texts = [document_text(i, tag) for i in range(UPLOADS)]
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=16)) as http:
        return await asyncio.gather(
            *(upload(http, api_process, api.token(USER), domain, text, multipart) for text in texts)
        )


@pytest.fixture(scope="module")
async def domain(api: GraphQLClient) -> str:
    return await active_domain(api, USER, "Upload memory")


@pytest.fixture(scope="module")
async def measured(
    api_process: ApiProcess, api: GraphQLClient, domain: str
) -> dict[str, list[Outcome]]:
    await wait_healthy(api_process)
    idle = api_process.status("VmRSS")
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(api_process, stop))
    try:
        outcomes = {
            "json": await run_uploads(api_process, api, domain, multipart=False),
            "multipart": await run_uploads(api_process, api, domain, multipart=True),
        }
    finally:
        stop.set()
        await sampler
    peak, sampled = api_process.status("VmHWM"), max(api_process.samples)
    print(
        f"\napi RSS: idle {idle / 2**20:.0f} MiB, sampled peak {sampled / 2**20:.0f} MiB,"
        f" VmHWM {peak / 2**20:.0f} MiB; accepted "
        + ", ".join(
            f"{kind} {sum(o.status == 200 for o in results)}/{UPLOADS}"
            for kind, results in outcomes.items()
        )
    )
    return outcomes


def test_eight_concurrent_20_mb_uploads_keep_the_api_under_512_mb(
    measured: dict[str, list[Outcome]], api_process: ApiProcess
) -> None:
    assert api_process.status("VmHWM") < CONTAINER_BYTES


@pytest.mark.parametrize("kind", ["json", "multipart"])
async def test_every_upload_is_stored_exactly_or_told_to_retry(
    measured: dict[str, list[Outcome]], services: Services, kind: str
) -> None:
    accepted = 0
    for outcome in measured[kind]:
        if outcome.status == 200:
            payload = outcome.body["data"]["addDocument"]
            assert payload["__typename"] == "AddDocumentSuccess", payload
            assert payload["created"] is True
            digest = hashlib.sha256(outcome.content).hexdigest()
            assert await stored(services, payload["document"]["id"]) == (
                digest,
                len(outcome.content),
            )
            accepted += 1
        else:
            assert outcome.status == 503, outcome.body
            assert int(outcome.headers["retry-after"]) >= 1
            (error,) = outcome.body["errors"]
            assert error["extensions"] == {"code": "TOO_MANY_UPLOADS", "retryable": True}
    assert accepted >= 1


class HeldBody:
    """A chunked JSON body: its first ``head`` bytes, then the rest once ``release`` is set.

    ``asked_for_more`` is set when the server asks for the second chunk, that is once it has
    taken the first one (and with it, past the threshold, an upload slot).
    """

    def __init__(self, body: bytes, head: int) -> None:
        self.body, self.head = body, head
        self.started = asyncio.Event()
        self.asked_for_more = asyncio.Event()
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started.set()
        yield self.body[: self.head]
        self.asked_for_more.set()
        await self.release.wait()
        yield self.body[self.head :]


def json_body(domain: str, text: str) -> bytes:
    variables = {"input": {"domainId": domain, "title": "slot", "content": text}}
    return json.dumps({"query": ADD, "variables": variables}).encode()


@pytest.fixture
def one_slot(api: GraphQLClient) -> Settings:
    """One upload slot, 1 MiB threshold, on a queue nobody polls."""
    return api.settings.model_copy(
        update={
            "max_concurrent_uploads": 1,
            "upload_threshold_bytes": 1024 * 1024,
            "task_queue": f"no-worker-{uuid.uuid4().hex[:8]}",
        }
    )


async def test_a_large_upload_past_the_slots_gets_a_retryable_503_and_stores_nothing(
    one_slot: Settings, api: GraphQLClient, services: Services, domain: str
) -> None:
    text = f"slot holder {uuid.uuid4()} " * 100_000  # ~4 MB
    held = HeldBody(json_body(domain, text), head=2 * 1024 * 1024)
    refused_text = f"refused {uuid.uuid4()} " * 100_000
    headers = {"Authorization": f"Bearer {api.token(USER)}", "Content-Type": "application/json"}
    async with gateway(one_slot.model_copy(update={"upload_wait_seconds": 0})) as client:
        holder = asyncio.create_task(client.http.post("/graphql", content=held, headers=headers))
        await held.asked_for_more.wait()
        refused = await client.http.post(
            "/graphql", content=json_body(domain, refused_text), headers=headers
        )
        held.release.set()
        accepted = await holder
        # The slot is free again: the same upload now goes through.
        retried = await client.http.post(
            "/graphql", content=json_body(domain, refused_text), headers=headers
        )
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    assert refused.json() == {
        "errors": [
            {
                "message": "too many uploads are in progress; retry after the time in Retry-After",
                "extensions": {"code": "TOO_MANY_UPLOADS", "retryable": True},
            }
        ]
    }
    for response, content in ((accepted, text), (retried, refused_text)):
        assert response.status_code == 200, response.text
        payload = response.json()["data"]["addDocument"]
        assert payload["__typename"] == "AddDocumentSuccess", payload
        data = content.encode()
        assert await stored(services, payload["document"]["id"]) == (
            hashlib.sha256(data).hexdigest(),
            len(data),
        )


async def test_a_large_upload_waits_for_the_slot_before_its_body_is_read(
    one_slot: Settings, api: GraphQLClient, domain: str
) -> None:
    first = HeldBody(json_body(domain, f"first {uuid.uuid4()} " * 100_000), 2 * 1024 * 1024)
    second = HeldBody(json_body(domain, f"second {uuid.uuid4()} " * 100_000), 2 * 1024 * 1024)
    headers = {"Authorization": f"Bearer {api.token(USER)}", "Content-Type": "application/json"}
    async with gateway(one_slot.model_copy(update={"upload_wait_seconds": 120})) as client:
        first_post = asyncio.create_task(
            client.http.post("/graphql", content=first, headers=headers)
        )
        await first.asked_for_more.wait()
        second_post = asyncio.create_task(
            client.http.post("/graphql", content=second, headers=headers)
        )
        await second.started.wait()
        # Past the threshold with the slot taken, the second waits: nothing more of it is read.
        assert not second.asked_for_more.is_set()
        first.release.set()
        await second.asked_for_more.wait()  # the first is done: the second has the slot now
        second.release.set()
        responses = [await first_post, await second_post]
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["data"]["addDocument"]["__typename"] == "AddDocumentSuccess"
