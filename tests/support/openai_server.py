"""A small OpenAI-compatible HTTP server, so tests drive the real ``openai`` SDK with no network.

Routes live in a registry of handlers keyed by ``(method, path)``; a handler takes the parsed
`Request` and returns a `Reply`. ``DEFAULT_ROUTES`` serves ``POST /v1/embeddings`` with
deterministic vectors (`fake_embedding`). To serve another endpoint, write a handler and register
it, in ``DEFAULT_ROUTES`` for every test or per server::

    server.route("POST", "/v1/chat/completions", my_chat_handler)

Every request is recorded in ``server.requests``. A test scripts failures or odd answers by queueing
replies for a path, which are used (in order) before the route's handler::

    server.queue("/v1/embeddings", Reply(500, error_body("boom")), times=1)

Usage::

    with OpenAIServer() as server:
        client = openai.AsyncOpenAI(api_key="test", base_url=server.base_url)
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any  # the parsed JSON body, or None


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # serialised as JSON
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]
Responder = Reply | Handler  # what a queued answer may be


def error_body(message: str, kind: str = "server_error", code: str | None = None) -> dict[str, Any]:
    """The error document OpenAI sends, which the SDK turns into ``APIStatusError.message``."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def fake_embedding(text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on ``text`` and ``dimensions``."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw.extend((byte - 127.5) / 127.5 for byte in digest)
        counter += 1
    raw = raw[:dimensions]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # Round-trip through float32, as the base64 encoding would, so both formats agree exactly.
    return [struct.unpack("<f", struct.pack("<f", x / norm))[0] for x in raw]


DEFAULT_EMBEDDING_DIMENSIONS = 1536


def embeddings_handler(request: Request) -> Reply:
    """``POST /v1/embeddings``: `fake_embedding` per input, in both encoding formats."""
    body = request.body if isinstance(request.body, dict) else {}
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) for x in inputs):
        return Reply(400, error_body("'input' must be a string or a list of strings", "invalid"))
    if any(not x for x in inputs):
        return Reply(400, error_body("'input' cannot contain empty strings", "invalid"))
    dimensions = int(body.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = fake_embedding(text, dimensions)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(text.split()) for text in inputs)
    return Reply(
        200,
        {
            "object": "list",
            "data": data,
            "model": body.get("model", "unknown"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


DEFAULT_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/v1/embeddings"): embeddings_handler,
}


class OpenAIServer:
    """A threaded HTTP server on a free 127.0.0.1 port; start/stop or use as a context manager."""

    def __init__(self, routes: Mapping[tuple[str, str], Handler] | None = None) -> None:
        self.routes: dict[tuple[str, str], Handler] = dict(
            DEFAULT_ROUTES if routes is None else routes
        )
        self.requests: list[Request] = []
        self._queued: dict[str, deque[Responder]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- configuration ---------------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def queue(self, path: str, responder: Responder, *, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with ``responder``, not the route."""
        with self._lock:
            self._queued.setdefault(path, deque()).extend([responder] * times)

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What ``openai.AsyncOpenAI(base_url=...)`` takes: the root ending in ``/v1``."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> OpenAIServer:
        handler = type("BoundHandler", (_HTTPHandler,), {"app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="openai-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- dispatch --------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            queued = self._queued.get(request.path)
            responder: Responder | None = queued.popleft() if queued else None
        if isinstance(responder, Reply):
            return responder
        if responder is not None:
            return responder(request)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return Reply(404, error_body(f"no route {request.method} {request.path}", "invalid"))
        return handler(request)


class _HTTPHandler(BaseHTTPRequestHandler):
    app: OpenAIServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        request = Request(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            reply = self.app.handle(request)
        except Exception as exc:  # a broken handler must show up as a reply, not a hung client
            reply = Reply(500, error_body(f"test server handler failed: {exc!r}"))
        payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


# --- chat completions (added for the LLM extractor's tests) --------------------------------------


def chat_completion_body(
    content: str | None,
    *,
    model: str = "test-model",
    finish_reason: str = "stop",
    refusal: str | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` document with one choice whose message says ``content``."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def chat_reply(content: str | None, **kwargs: Any) -> Reply:
    """A 200 reply carrying `chat_completion_body` (for ``server.queue`` or a handler)."""
    return Reply(200, chat_completion_body(content, **kwargs))


def last_user_message(request: Request) -> str:
    """The text of the request's last ``user`` message ("" when there is none)."""
    body = request.body if isinstance(request.body, dict) else {}
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # content parts
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def chat_handler(answer: Callable[[Request], str | Reply]) -> Handler:
    """A chat completions route whose assistant message is ``answer(request)``.

    ``answer`` may return a whole `Reply` instead (an error, a refusal, a cut-off reply)::

        server.route("POST", "/v1/chat/completions", chat_handler(lambda r: '{"a": 1}'))
    """

    def handle(request: Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return Reply(400, error_body("'model' and 'messages' are required", "invalid"))
        answer_ = answer(request)
        if isinstance(answer_, Reply):
            return answer_
        return chat_reply(answer_, model=str(body["model"]))

    return handle


chat_completions_handler = chat_handler(last_user_message)
"""``POST /v1/chat/completions`` by default: the assistant echoes the last user message."""

DEFAULT_ROUTES[("POST", "/v1/chat/completions")] = chat_completions_handler
