"""Postgres LISTEN on one dedicated connection: the api's single feed of what workflows record.

The connection reconnects on its own after a Postgres restart or a dropped link; ``on_connect``
runs after every (re)connect, so whoever listens can catch up on what it missed meanwhile (a
notification sent while nobody listened is gone; the rows it announced are not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


class PostgresListener:
    def __init__(
        self,
        database_url: str,
        channels: Sequence[str],
        on_notify: Callable[[str, str], Awaitable[None]],
        on_connect: Callable[[], Awaitable[None]],
    ) -> None:
        self._url = database_url
        self._channels = list(channels)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="postgres-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, prepare_threshold=None
                )
            except psycopg.OperationalError as exc:
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "LISTEN connection failed (%s); retrying in %gs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                continue
            try:
                async with conn:
                    for channel in self._channels:
                        await conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
                    failures = 0
                    self.connected.set()
                    await self._on_connect()
                    async for notice in conn.notifies():
                        await self._on_notify(notice.channel, notice.payload)
            except psycopg.OperationalError as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
            finally:
                self.connected.clear()
            await asyncio.sleep(RECONNECT_DELAYS[0])
