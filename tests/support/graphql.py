"""A small GraphQL client for tests: real HTTP through the ASGI app, with auth headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from heysh.app import create_app
from heysh.config import Settings
from heysh.local.users import user_id_for
from tests.support.tokens import user_token


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A gateway app built from ``settings``, lifespan running, behind an HTTP client."""
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield GraphQLClient(http, settings)


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    def token(self, user: str) -> str:
        return user_token(self.settings, user_id_for(user))

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        user: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        headers = {}
        if user is not None:
            token = self.token(user)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None, **auth: Any) -> Any:
        body = await self.execute(query, variables, **auth)
        assert "errors" not in body, body
        return body["data"]


async def eventually(
    probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], within: float = 60.0
) -> Any:
    """Poll ``probe`` until ``done(value)``; fails with the last value seen."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(0.2)
