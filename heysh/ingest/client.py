"""The public GraphQL API as `heysh ingest` uses it: queries and mutations over HTTP, the
document itself as a multipart upload, and a run's events over a WebSocket subscription resumed
with `after` when the socket drops."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from heysh.ingest.errors import ApiError, ApiUnreachableError, IngestError, TokenRefusedError
from heysh.ingest.files import TEXT_SUFFIXES

RECONNECT_ATTEMPTS = 8  # consecutive failed WebSocket connections before a document is given up
UPLOAD_ATTEMPTS = 6  # 503 TOO_MANY_UPLOADS is retryable: the api's upload slots were all busy
TOKEN_REFUSED_CLOSE_CODES = (4401, 4403)
TERMINAL = ("COMPLETED", "FAILED", "CANCELED")

# Every operation this client sends: the public contract, nothing else.
DOMAIN = "query($id: ID!) { domain(id: $id) { id name status lastRun { id status } } }"
ADD = """mutation($input: AddDocumentInput!) { addDocument(input: $input) {
  __typename
  ... on AddDocumentSuccess { created document { id status } run { id status } }
  ... on UserError { code message field } } }"""
DOCUMENT = """query($id: ID!) { document(id: $id) {
  status error chunkCount entityCount relationshipCount } }"""
CANCEL = """mutation($id: ID!) { cancelWorkflowRun(id: $id) {
  __typename ... on UserError { code message } } }"""
RUN_EVENTS = """subscription($id: ID!, $after: Int!) { workflowRun(id: $id, after: $after) {
  seq stage status progress message at run { id status stage progress } } }"""


class _UploadsBusyError(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"upload slots busy; retry after {retry_after} s")
        self.retry_after = retry_after


def websocket_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}"


def check_url(url: str, *, allow_http: bool) -> None:
    """Refuse to send a bearer token in the clear anywhere but this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IngestError(f"the api URL must be http(s)://HOST[:PORT]/graphql, not {url!r}")
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise IngestError(
            f"refusing to send the token unencrypted to {parts.hostname}: use https:// "
            "(or --allow-http on a network you trust)"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _first_error(errors: Any) -> tuple[str, str]:
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, dict):
        return "ERROR", str(first)
    extensions = first.get("extensions") or {}
    return str(extensions.get("code") or "ERROR"), str(first.get("message") or "no message")


class Api:
    """GraphQL over HTTP (queries, mutations, multipart uploads) and WebSocket (run events)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._token = token
        self._http = httpx.AsyncClient(
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/graphql-response+json, application/json;q=0.9",
            },
            timeout=httpx.Timeout(120.0, connect=10.0),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self._post(json={"query": query, "variables": variables})

    async def upload(self, domain_id: str, title: str, path: Path) -> dict[str, Any]:
        """addDocument with the file as an Upload (GraphQL multipart request spec), streamed."""
        variables = {"input": {"domainId": domain_id, "title": title, "file": None}}
        operations = json.dumps({"query": ADD, "variables": variables})
        files_map = json.dumps({"0": ["variables.input.file"]})
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            with path.open("rb") as body:
                try:
                    return await self._post(
                        data={"operations": operations, "map": files_map},
                        files={"0": (path.name, body, TEXT_SUFFIXES[path.suffix.lower()])},
                    )
                except _UploadsBusyError as busy:
                    if attempt == UPLOAD_ATTEMPTS:
                        raise ApiError("TOO_MANY_UPLOADS", "the api stayed busy") from None
                    await asyncio.sleep(busy.retry_after)
        raise AssertionError("unreachable")

    async def _post(self, **request: Any) -> dict[str, Any]:
        try:
            response = await self._http.post(self.url, **request)
        except httpx.TransportError as exc:
            raise ApiUnreachableError(
                f"cannot reach the api at {self.url} ({exc or type(exc).__name__})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("errors"):
            code, message = _first_error(body["errors"])
            if code == "UNAUTHENTICATED":
                raise TokenRefusedError(f"the api refused the token ({message})")
            if code == "TOO_MANY_UPLOADS":
                raise _UploadsBusyError(_retry_after(response))
            raise ApiError(code, message)
        if response.status_code != 200 or not isinstance(body, dict) or "data" not in body:
            raise ApiError(f"HTTP {response.status_code}", response.text[:200] or "no body")
        data: dict[str, Any] = body["data"]
        return data

    async def follow(self, run_id: str, on_event: Callable[[dict[str, Any]], None]) -> None:
        """Deliver the run's events in order until its terminal one; reconnect and resume with
        `after` (no gap, no repeat) when the socket drops or the api restarts."""
        from gql import Client, GraphQLRequest
        from gql.transport.exceptions import TransportError, TransportQueryError
        from gql.transport.websockets import WebsocketsTransport
        from websockets.exceptions import WebSocketException

        after, failures, ended = 0, 0, False
        while not ended:
            transport = WebsocketsTransport(
                url=websocket_url(self.url),
                init_payload={"Authorization": f"Bearer {self._token}"},
                connect_timeout=10,
                ack_timeout=10,
            )
            request = GraphQLRequest(RUN_EVENTS, variable_values={"id": run_id, "after": after})
            try:
                async with Client(transport=transport) as session:
                    async for result in session.subscribe(request):
                        event: dict[str, Any] = result["workflowRun"]
                        after, failures = event["seq"], 0
                        ended = event["status"] in TERMINAL
                        on_event(event)
            except TransportQueryError as exc:
                code, message = _first_error(exc.errors)
                if code == "UNAUTHENTICATED":
                    raise TokenRefusedError(f"the api refused the token ({message})") from None
                if code != "SUBSCRIBER_TOO_SLOW":  # that one ends the subscription; resume
                    raise ApiError(code, message) from None
            except (TransportError, WebSocketException, OSError, TimeoutError) as exc:
                if _close_code(exc) in TOKEN_REFUSED_CLOSE_CODES:
                    raise TokenRefusedError("the api refused the token") from None
                failures += 1
                if failures > RECONNECT_ATTEMPTS:
                    raise ApiUnreachableError(
                        f"lost the live connection to {websocket_url(self.url)} "
                        f"({exc or type(exc).__name__})"
                    ) from None
                await asyncio.sleep(min(0.25 * 2**failures, 5.0))
            # A subscription completed before the terminal event (an api shutting down ends its
            # streams) is resumed like a dropped one.


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "5")), 0.5), 60.0)
    except ValueError:
        return 5.0


def _close_code(error: BaseException) -> int | None:
    """The WebSocket close code the api sent, from anywhere in the error's chain."""
    from websockets.exceptions import ConnectionClosed

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionClosed) and seen.rcvd is not None:
            return seen.rcvd.code
        seen = seen.__cause__ or seen.__context__
    return None
