"""Structured logs of the real processes: JSON lines in production, each with the ids it belongs
to, and never a secret or a word of a document.

`heysh api` and `heysh worker` run as their images run them (production, OpenAI embeddings),
against this stack with a secret for every backend: Weaviate is a second server that demands its
API key, the OpenAI API is served locally and sees the key, the others accept any credentials.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import psycopg
import pytest
from neo4j import AsyncGraphDatabase
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from websockets.asyncio.client import connect as websocket_connect
from websockets.typing import Subprotocol

from heysh.activities.outages import StoreOutageInterceptor
from heysh.auth import mint_token
from heysh.config import Settings
from heysh.local.services import WeaviateService
from heysh.local.stack import LocalStack, free_test_ports
from heysh.local.users import user_id_for
from heysh.services import Services
from tests.support.documents import ADD, CREATE_DOMAIN, DOCUMENT, DOMAIN_STATUS, raw_id
from tests.support.graphql import eventually
from tests.support.images import image_config, run_image_command
from tests.support.live_api import free_port
from tests.support.openai_server import OpenAIServer, Reply, error_body

pytestmark = pytest.mark.integration

MARK = f"zq{uuid.uuid4().hex[:10]}"  # a word no log line could hold unless a document leaked
SENTENCE = f"Captain {MARK} buried nine copper lanterns under the eastern pier at dawn."
TITLE_MARK = f"tq{uuid.uuid4().hex[:10]}"
TITLE = f"Harbour ledger {TITLE_MARK}"
CONTENT = "\n\n".join(
    [
        "The harbour office keeps a ledger of every ship that enters the bay.",
        SENTENCE,
        "Nobody has found the lanterns since, although many have searched the shore.",
    ]
)
SUPABASE_URL = "https://heyshlogs.supabase.co"
QUEUE = f"logs-{uuid.uuid4().hex[:8]}"
USER = "logs-lou"


@dataclass(eq=False, repr=False)
class KeyedWeaviate(WeaviateService):
    """Weaviate that refuses anonymous requests and accepts one API key, as Weaviate Cloud."""

    api_key: str = field(default="", kw_only=True)

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
            "AUTHENTICATION_APIKEY_ENABLED": "true",
            "AUTHENTICATION_APIKEY_ALLOWED_KEYS": self.api_key,
            "AUTHENTICATION_APIKEY_USERS": "heysh",
        }


@dataclass(frozen=True)
class Secrets:
    """One for every backend, as production requires (only the keyed Weaviate checks its)."""

    database_password: str = f"pg-{uuid.uuid4().hex}"
    neo4j_password: str = f"n4j-{uuid.uuid4().hex}"
    weaviate_api_key: str = f"wv-{uuid.uuid4().hex}"
    temporal_api_key: str = f"tmprl-{uuid.uuid4().hex}"
    jwt_secret: str = f"jwt-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    openai_api_key: str = f"sk-test-{uuid.uuid4().hex}"

    def all(self) -> list[str]:
        return list(self.__dict__.values())


SECRETS = Secrets()  # new values every run


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module")
def keyed_weaviate(
    stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeyedWeaviate]:
    root = tmp_path_factory.mktemp("keyed-weaviate")
    ports = free_test_ports()
    service = KeyedWeaviate(
        root / "data",
        stack.weaviate.binary,
        http_port=ports.weaviate_http,
        grpc_port=ports.weaviate_grpc,
        gossip_port=ports.weaviate_gossip,
        raft_port=ports.weaviate_raft,
        log_path=root / "weaviate.log",
        api_key=SECRETS.weaviate_api_key,
    )
    service.start()
    try:
        service.wait_ready(120)
        yield service
    finally:
        service.stop()


def production_env(
    stack: LocalStack, weaviate: KeyedWeaviate, openai: OpenAIServer, dockerfile: str
) -> dict[str, str]:
    image = image_config(dockerfile)
    local = stack.settings_env()
    database = local["HEYSH_DATABASE_URL"].replace(
        "postgres@", f"postgres:{SECRETS.database_password}@"
    )
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HEYSH_", "OTEL_"))},
        **{k: v for k, v in image.env.items() if k.startswith(("HEYSH_", "MALLOC_"))},
        "HEYSH_DATABASE_URL": database,
        "HEYSH_NEO4J_URI": local["HEYSH_NEO4J_URI"],
        "HEYSH_NEO4J_PASSWORD": SECRETS.neo4j_password,
        "HEYSH_WEAVIATE_URL": weaviate.url,
        "HEYSH_WEAVIATE_GRPC_PORT": str(weaviate.grpc_port),
        "HEYSH_WEAVIATE_API_KEY": SECRETS.weaviate_api_key,
        "HEYSH_WEAVIATE_COLLECTION": "LogChunks",
        "HEYSH_TEMPORAL_ADDRESS": local["HEYSH_TEMPORAL_ADDRESS"],
        "HEYSH_TEMPORAL_API_KEY": SECRETS.temporal_api_key,
        "HEYSH_TEMPORAL_TLS": "false",  # the local server speaks plain gRPC
        "HEYSH_TASK_QUEUE": QUEUE,
        "HEYSH_SUPABASE_URL": SUPABASE_URL,
        "HEYSH_SUPABASE_JWT_SECRET": SECRETS.jwt_secret,
        "HEYSH_OPENAI_API_KEY": SECRETS.openai_api_key,
        "HEYSH_OPENAI_BASE_URL": openai.base_url,
        "HEYSH_OPENAI_EMBEDDING_DIMENSIONS": "64",
        "HEYSH_LOG_LEVEL": "DEBUG",  # heysh's own; libraries stay at INFO
        "PYTHONUNBUFFERED": "1",
    }


def token(user: str = USER) -> str:
    return mint_token(
        SECRETS.jwt_secret,
        user_id_for(user),
        issuer=f"{SUPABASE_URL}/auth/v1",
        audience="authenticated",
    )


@dataclass
class Api:
    url: str
    http: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token()}", **(headers or {})},
        )

    async def data(self, query: str, variables: dict[str, Any]) -> Any:
        body = (await self.post(query, variables)).json()
        assert "errors" not in body, body
        return body["data"]


@dataclass
class Run:
    api: Process
    worker: Process
    openai: OpenAIServer
    request_id: str  # sent with addDocument
    websocket_request_id: str
    run_id: str  # addDocument's run: the Temporal workflow id


@pytest.fixture(scope="module")
async def run(
    stack: LocalStack, keyed_weaviate: KeyedWeaviate, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Run]:
    """Both processes through a document's processing (one embedding call refused), a bad
    token, a malformed query, a refused input and a search over GET; then stopped."""
    logs = tmp_path_factory.mktemp("logs")
    with OpenAIServer() as openai:
        port = free_port()
        processes: list[Process] = []
        for name, dockerfile in (("worker", "Dockerfile.worker"), ("api", "Dockerfile.api")):
            env = production_env(stack, keyed_weaviate, openai, dockerfile)
            env.update({"HEYSH_API_HOST": "127.0.0.1", "HEYSH_API_PORT": str(port)})
            log = logs / f"{name}.log"
            with log.open("wb") as log_file:
                popen = run_image_command(image_config(dockerfile), env, log_file)
            processes.append(Process(name, popen, log))
        worker, api_process = processes
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                api = Api(f"http://127.0.0.1:{port}", http)
                await healthy(api, processes)
                result = await drive(api, openai, port)
        except BaseException as exc:
            tails = "\n".join(f"{p.name}:\n{p.text()[-3000:]}" for p in processes)
            raise AssertionError(f"{exc!r}\n{tails}") from exc
        finally:
            for process in processes:
                process.stop()
        yield Run(api_process, worker, openai, *result)


async def healthy(api: Api, processes: list[Process]) -> None:
    async def probe() -> int | None:
        for process in processes:
            assert process.popen.poll() is None, f"{process.name} exited"
        try:
            return (await api.http.get(f"{api.url}/readyz")).status_code
        except httpx.TransportError:
            return None

    await eventually(probe, lambda status: status == 200, within=90)


async def drive(api: Api, openai: OpenAIServer, port: int) -> tuple[str, str, str]:
    created = await api.data(CREATE_DOMAIN, {"name": "Harbour"})
    domain = created["createDomain"]["domain"]["id"]

    async def domain_status() -> Any:
        return (await api.data(DOMAIN_STATUS, {"id": domain}))["domain"]["status"]

    assert await eventually(domain_status, lambda s: s != "CREATING") == "ACTIVE"

    # The first embedding call is refused: embed_chunks fails once, is retried, and succeeds.
    openai.queue("/v1/embeddings", Reply(400, error_body("the batch was refused", "invalid")))
    request_id = f"logs-test-{uuid.uuid4().hex[:12]}"
    response = await api.post(
        ADD,
        {"input": {"domainId": domain, "title": TITLE, "content": CONTENT}},
        headers={"X-Request-ID": request_id},
    )
    assert response.headers["x-request-id"] == request_id
    added = response.json()["data"]["addDocument"]
    assert added["__typename"] == "AddDocumentSuccess", added

    async def document() -> Any:
        return (await api.data(DOCUMENT, {"id": added["document"]["id"]}))["document"]

    done = await eventually(document, lambda d: d["status"] in ("READY", "FAILED"), within=120)
    assert done["status"] == "READY", done

    # Failures the api answers: a bad token, a query that does not parse (the sentence inline),
    # variables that do not fit (graphql-core quotes the input), a search sent over GET.
    refused = await api.http.post(
        f"{api.url}/graphql",
        json={"query": "{ viewer { id } }"},
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    broken = f'mutation {{ addDocument(input: {{title: "{TITLE}", content: "{SENTENCE}" }}'
    assert "errors" in (await api.post(broken, {})).json()
    misfit = await api.post(ADD, {"input": {"title": TITLE, "content": SENTENCE, "x": 1}})
    assert "errors" in misfit.json()
    search = f'{{ search(domainId: "{domain}", query: "{SENTENCE}") {{ hits {{ score }} }} }}'
    await api.http.get(
        f"{api.url}/graphql",
        params={"query": search},
        headers={"Authorization": f"Bearer {token()}"},
    )

    # A WebSocket connection has one id, returned in its handshake.
    websocket_request_id = f"logs-ws-{uuid.uuid4().hex[:12]}"
    async with websocket_connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers={"X-Request-ID": websocket_request_id},
    ) as websocket:
        assert websocket.response is not None
        assert websocket.response.headers["x-request-id"] == websocket_request_id
        await websocket.send(json.dumps({"type": "connection_init", "payload": {}}))
        await asyncio.wait_for(websocket.wait_closed(), 10)  # no token: closed

    return request_id, websocket_request_id, raw_id(added["run"]["id"])


def json_lines(process: Process) -> list[dict[str, Any]]:
    lines = process.text().splitlines()
    assert lines, f"{process.name} logged nothing"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{process.name} wrote a line that is not JSON: {line}") from None
    for entry in parsed:
        assert {"time", "severity", "logger", "message"} <= set(entry), entry
        assert entry["process"] == process.name
    return parsed


def test_every_line_of_both_processes_is_json(run: Run) -> None:
    assert len(json_lines(run.api)) > 5
    assert len(json_lines(run.worker)) > 1


def test_api_request_lines_carry_their_request_id(run: Run) -> None:
    lines = json_lines(run.api)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert len(access) >= 8
    assert all(line.get("request_id") for line in access)
    assert len({line["request_id"] for line in access}) == len(access)  # one id a request
    ours = [line for line in access if line["request_id"] == run.request_id]
    assert len(ours) == 1
    assert '"POST /graphql HTTP/1.1" 200' in ours[0]["message"]
    (accepted,) = [line for line in lines if "[accepted]" in line["message"]]
    assert accepted["request_id"] == run.websocket_request_id
    # Within the connection ("connection open"), not outside any request (start-up, shutdown).
    assert {line.get("request_id") for line in lines if line["message"] == "connection open"} == {
        run.websocket_request_id
    }
    startup = [line for line in lines if "startup complete" in line["message"]]
    assert startup
    assert not any("request_id" in line for line in startup)


def test_activity_lines_carry_the_workflow_and_its_run(run: Run) -> None:
    lines = json_lines(run.worker)
    in_activities = [line for line in lines if "activity" in line]
    assert in_activities
    for line in in_activities:
        assert line["workflow_id"], line
        assert line["run_id"], line
        assert line["workflow"], line
    (failed,) = [
        line for line in in_activities if line["message"] == "Completing activity as failed"
    ]
    assert failed["activity"] == "embed_chunks"
    assert failed["workflow_id"] == run.run_id
    assert failed["attempt"] == 1
    assert "EmbeddingError" in failed["exception"]
    assert "openai.BadRequestError: HTTP 400 (message withheld)" in failed["exception"]
    temporal = [line for line in lines if line["logger"].startswith("temporalio.activity")]
    assert all("run_id" in line for line in temporal)


def test_no_secret_and_no_document_text_appears_in_either_log(run: Run) -> None:
    # The secrets were in use: the OpenAI API saw its key (Weaviate refuses anonymous calls).
    embeddings = run.openai.requests_to("/v1/embeddings")
    headers = {key.lower(): value for key, value in embeddings[0].headers.items()}
    assert headers["authorization"] == f"Bearer {SECRETS.openai_api_key}"
    forbidden = [
        *SECRETS.all(),
        MARK,  # any form of the sentence: URL-encoded, JSON-escaped, cut into a chunk
        TITLE_MARK,
        SENTENCE,
        quote(SENTENCE),
        quote_plus(SENTENCE),
    ]
    for process in (run.api, run.worker):
        text = process.text()
        for value in forbidden:
            assert value not in text, f"{value!r} in the {process.name}'s log"


# --- driver errors, as the drivers really raise them --------------------------------------------


def captured_json() -> tuple[logging.Logger, io.StringIO]:
    from heysh.telemetry.logs import build_handler

    stream = io.StringIO()
    logger = logging.getLogger(f"heysh.test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(build_handler(Settings(env="test", log_format="json"), "test", stream))
    return logger, stream


async def test_postgres_and_neo4j_errors_are_logged_without_the_values_they_quote(
    settings: Settings,
) -> None:
    logger, stream = captured_json()
    raised: list[Exception] = []
    async with await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value(), autocommit=True
    ) as conn:
        await conn.execute("create temporary table log_probe (k text primary key)")
        await conn.execute("insert into log_probe values (%s)", [SENTENCE])
        try:
            await conn.execute("insert into log_probe values (%s)", [SENTENCE])
        except psycopg.errors.UniqueViolation as exc:
            raised.append(exc)
            logger.exception("could not insert")
    label = f"LogProbe{uuid.uuid4().hex[:8]}"
    driver = AsyncGraphDatabase.driver(settings.neo4j_uri)
    try:
        await driver.execute_query(
            f"CREATE CONSTRAINT {label} FOR (n:{label}) REQUIRE n.k IS UNIQUE"
        )
        await driver.execute_query(f"CREATE (:{label} {{k: $k}})", k=SENTENCE)
        try:
            await driver.execute_query(f"CREATE (:{label} {{k: $k}})", k=SENTENCE)
        except Exception as exc:
            raised.append(exc)
            logger.exception("could not create")
    finally:
        await driver.execute_query(f"MATCH (n:{label}) DELETE n")
        await driver.execute_query(f"DROP CONSTRAINT {label} IF EXISTS")
        await driver.close()
    assert len(raised) == 2
    assert all(MARK in str(exc) for exc in raised)  # what the drivers' own text quotes
    text = stream.getvalue()
    assert MARK not in text
    assert "SQLSTATE 23505, duplicate key value violates unique constraint" in text
    assert "Neo.ClientError.Schema.ConstraintValidationFailed" in text


@activity.defn(name="insert_twice")
async def insert_twice(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("create temporary table log_probe (k text primary key)")
        await conn.execute("insert into log_probe values (%s), (%s)", [SENTENCE, SENTENCE])


@workflow.defn(name="InsertTwice", sandboxed=False)
class InsertTwice:
    @workflow.run
    async def run(self, database_url: str) -> str:
        try:
            await workflow.execute_activity(
                insert_twice,
                database_url,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            return str(err.cause)
        return "no failure"


async def test_an_activity_failing_on_a_driver_error_records_and_logs_its_code_only(
    services: Services, settings: Settings
) -> None:
    logger, stream = captured_json()
    temporal_logger = logging.getLogger("temporalio.activity")
    (handler,) = logger.handlers
    temporal_logger.addHandler(handler)
    queue = f"driver-{uuid.uuid4().hex[:8]}"
    run_id = f"driver-{uuid.uuid4()}"
    try:
        async with Worker(
            services.temporal,
            task_queue=queue,
            workflows=[InsertTwice],
            activities=[insert_twice],
            interceptors=[StoreOutageInterceptor()],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            message = await services.temporal.execute_workflow(
                InsertTwice.run,
                settings.database_url.get_secret_value(),
                id=run_id,
                task_queue=queue,
            )
    finally:
        temporal_logger.removeHandler(handler)
    assert message.startswith("UniqueViolation: SQLSTATE 23505, duplicate key value"), message
    history = [
        event.activity_task_failed_event_attributes.failure
        async for event in services.temporal.get_workflow_handle(run_id).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    (failure,) = history
    assert failure.application_failure_info.type == "UniqueViolation"
    assert not failure.HasField("cause")
    assert MARK not in str(failure)
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    # (This process has not run configure_logging: Temporal still appends its details.)
    (failed,) = [line for line in logged if line["message"].startswith("Completing activity as")]
    assert failed["run_id"]
    assert failed["activity"] == "insert_twice"
    assert "insert_twice" in failed["exception"]  # the frames where it failed are kept
    assert MARK not in stream.getvalue()
