"""A real GraphQL-over-WebSocket client (gql) for either protocol, signed in with a token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gql import Client, gql
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed

PROTOCOLS = ("graphql-transport-ws", "graphql-ws")

RUN_EVENTS = """subscription($id: ID!, $after: Int!) { workflowRun(id: $id, after: $after) {
  seq stage status progress message at run { id status stage progress } } }"""


@asynccontextmanager
async def ws_session(url: str, token: str, protocol: str) -> AsyncIterator[AsyncClientSession]:
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://", 1),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[protocol],
    )
    async with Client(transport=transport) as session:
        yield session


async def run_events(
    session: AsyncClientSession, run_id: str, after: int = 0, *, take: int | None = None
) -> list[dict[str, Any]]:
    """The events the subscription streams until it completes (or ``take`` of them)."""
    events: list[dict[str, Any]] = []
    request = gql(RUN_EVENTS)
    request.variable_values = {"id": run_id, "after": after}
    async for result in session.subscribe(request):
        events.append(result["workflowRun"])
        if take is not None and len(events) == take:
            break
    return events


def close_code(error: BaseException) -> int | None:
    """The WebSocket close code the server sent, from anywhere in the error's chain."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionClosed) and seen.rcvd is not None:
            return seen.rcvd.code
        seen = seen.__cause__ or seen.__context__
    return None


DOMAIN_EVENTS = """subscription($id: ID!, $after: Int!) {
  domainEvents(domainId: $id, after: $after) { seq kind documentId runId runKind status at } }"""


async def domain_events(
    session: AsyncClientSession, domain_id: str, after: int = 0, *, until: Any = None
) -> list[dict[str, Any]]:
    """The domain's events until ``until(event)`` holds for one (it is included)."""
    events: list[dict[str, Any]] = []
    request = gql(DOMAIN_EVENTS)
    request.variable_values = {"id": domain_id, "after": after}
    async for result in session.subscribe(request):
        events.append(result["domainEvents"])
        if until is not None and until(events[-1]):
            break
    return events
