"""WebSocket clients (graphql-transport-ws) authenticate once, in connection_init.

The real app runs under uvicorn and a real WebSocket client talks to it over TCP. A valid
`{"Authorization": "Bearer <token>"}` payload is acknowledged and binds the connection to that
user; anything else closes the socket with 4403 Forbidden before any acknowledgement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws

from heysh.auth import mint_dev_token
from heysh.config import Settings
from heysh.local.users import user_id_for
from tests.support.jwks import supabase_claims
from tests.support.live_api import serve_api

pytestmark = pytest.mark.integration

PROTOCOL = "graphql-transport-ws"
FORBIDDEN = 4403  # what graphql-transport-ws sends for a rejected connection_init
UNAUTHORIZED = 4401  # ... and for a subscribe before the connection was acknowledged


@pytest.fixture(scope="module")
async def ws_url(settings: Settings) -> AsyncIterator[str]:
    async with serve_api(settings) as url:
        yield url.replace("http://", "ws://", 1)


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[AsyncWebSocketSession]:
    async with (
        httpx.AsyncClient() as client,
        aconnect_ws(url, client, subprotocols=[PROTOCOL]) as ws,
    ):
        assert ws.subprotocol == PROTOCOL
        yield ws


async def closed_with(ws: AsyncWebSocketSession) -> tuple[int, list[Any]]:
    """Read until the server closes; the close code and every message sent before it."""
    received: list[Any] = []
    while True:
        try:
            received.append(await ws.receive_json(timeout=10))
        except WebSocketDisconnect as closed:
            return closed.code, received


def signed(
    settings: Settings,
    *,
    secret: str | None = None,
    sub: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    subject = sub or user_id_for("wendy-ws")
    claims = supabase_claims(settings.jwt_issuer, subject, ttl_seconds=ttl_seconds)
    key = secret or settings.supabase_jwt_secret.get_secret_value()  # type: ignore[union-attr]
    return jwt.encode(claims, key, algorithm="HS256")


async def test_valid_token_in_connection_init_is_acknowledged_and_identifies_the_user(
    ws_url: str, settings: Settings
) -> None:
    token = mint_dev_token(settings, user_id_for("wendy-ws"))
    async with connect(ws_url) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert await ws.receive_json(timeout=10) == {"type": "connection_ack"}
        # Operations on the connection run as that user.
        await ws.send_json(
            {"type": "subscribe", "id": "1", "payload": {"query": "{ viewer { id } }"}}
        )
        assert await ws.receive_json(timeout=10) == {
            "type": "next",
            "id": "1",
            "payload": {"data": {"viewer": {"id": user_id_for("wendy-ws")}}},
        }
        assert await ws.receive_json(timeout=10) == {"type": "complete", "id": "1"}


def refused_payloads(settings: Settings) -> dict[str, dict[str, Any] | None]:
    """connection_init payloads that must not authenticate, by what is wrong with them."""
    valid = mint_dev_token(settings, user_id_for("wendy-ws"))
    foreign = signed(settings, secret="another-secret-of-sufficient-length-0123456789")
    return {
        "no payload": None,
        "empty payload": {},
        "no scheme": {"Authorization": valid},
        "not a jwt": {"Authorization": "Bearer not-a-jwt"},
        "not a string": {"Authorization": 12345},
        "lower-case key": {"authorization": f"Bearer {valid}"},
        "expired": {"Authorization": f"Bearer {signed(settings, ttl_seconds=-3600)}"},
        "signed with another key": {"Authorization": f"Bearer {foreign}"},
        "subject not a uuid": {"Authorization": f"Bearer {signed(settings, sub='alice')}"},
    }


@pytest.mark.parametrize(
    "case",
    [
        "no payload",
        "empty payload",
        "no scheme",
        "not a jwt",
        "not a string",
        "lower-case key",
        "expired",
        "signed with another key",
        "subject not a uuid",
    ],
)
async def test_connection_init_without_a_valid_token_is_closed_4403_without_ack(
    ws_url: str, settings: Settings, case: str
) -> None:
    payload = refused_payloads(settings)[case]
    message: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        message["payload"] = payload
    async with connect(ws_url) as ws:
        await ws.send_json(message)
        assert await closed_with(ws) == (FORBIDDEN, [])


async def test_operations_before_connection_init_are_refused_4401(ws_url: str) -> None:
    async with connect(ws_url) as ws:
        await ws.send_json(
            {"type": "subscribe", "id": "1", "payload": {"query": "{ viewer { id } }"}}
        )
        assert await closed_with(ws) == (UNAUTHORIZED, [])
