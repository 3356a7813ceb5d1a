"""Request body limits for the gateway: a size cap, and a cap on large bodies in flight at once.

- ``BodyLimit`` answers 413 when a body exceeds the cap, declared or streamed, before buffering it.
- ``UploadSlots`` lets at most ``slots`` requests with a body over ``threshold`` bytes run at once.
  A document upload costs the api several times its size while it is parsed, checked and written
  (the body, the parsed string, the driver's buffers), so the api's memory is bounded by slots x
  that, not by how many clients upload together. A large request waits up to ``wait_seconds`` for
  a slot before its body is read, then gets 503 with ``Retry-After`` and a GraphQL error whose
  ``extensions`` say ``{"code": "TOO_MANY_UPLOADS", "retryable": true}``. Each large request ends
  with a garbage collection, so what it leaves in reference cycles is gone before the next one.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _Response:
    """The app's send, remembering whether the response has begun: after that, an error
    response can no longer be sent."""

    def __init__(self, send: Send) -> None:
        self.started = False
        self._send = send

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


class _TooLarge(Exception):
    pass


class _NoSlot(Exception):
    pass


class BodyLimit:
    """Answer 413 when a request body exceeds ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        response = _Response(send)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, response)
        except _TooLarge:
            if not response.started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await _send_error(
            send, 413, f"request body exceeds {self.limit} bytes", {"code": "PAYLOAD_TOO_LARGE"}
        )


class UploadSlots:
    """At most ``slots`` requests with a body over ``threshold`` bytes in the app at once.

    A declared (Content-Length) large body waits for a slot before any of it is read; a streamed
    one waits when what it sent passes the threshold. Either holds the slot until its response is
    sent. One that finds no slot within ``wait_seconds`` is answered 503 once its body has been
    read and dropped, so the client, still sending, reads the answer rather than a reset.
    """

    def __init__(
        self,
        app: ASGIApp,
        slots: int,
        threshold: int,
        wait_seconds: float,
        retry_after_seconds: int = 5,
    ) -> None:
        self.app = app
        self.threshold = threshold
        self.wait_seconds = wait_seconds
        self.retry_after_seconds = retry_after_seconds
        self._slots = asyncio.Semaphore(slots)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) <= self.threshold:
                await self.app(scope, receive, send)
            elif await self._acquire():
                try:
                    await self.app(scope, receive, send)
                finally:
                    self._release()
            else:
                await self._refuse(receive, send, more_body=True)
            return
        await self._streamed(scope, receive, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body of unknown length: take a slot when it turns out to be large."""
        received = 0
        holding = False
        response = _Response(send)
        last: Message = {"more_body": False}

        async def counting_receive() -> Message:
            nonlocal received, holding, last
            message = await receive()
            if message["type"] == "http.request" and not holding:
                last = message
                received += len(message.get("body", b""))
                if received > self.threshold:
                    if not await self._acquire():
                        raise _NoSlot
                    holding = True
            return message

        try:
            await self.app(scope, counting_receive, response)
        except _NoSlot:
            if not response.started:
                await self._refuse(receive, send, more_body=bool(last.get("more_body")))
        finally:
            if holding:
                self._release()

    def _release(self) -> None:
        # A request leaves its parsed variables (the whole document) in reference cycles that
        # only a full collection frees; without one they outlive it and pile up across uploads.
        gc.collect()
        self._slots.release()

    async def _acquire(self) -> bool:
        # asyncio.timeout, not wait_for: a slot granted as the time runs out goes back to the
        # semaphore (its acquire undoes a cancelled grant) instead of leaking.
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            return False
        return True

    async def _refuse(self, receive: Receive, send: Send, *, more_body: bool) -> None:
        # Read the rest of the body and drop it (BodyLimit, outside, still caps how much).
        while more_body:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            more_body = bool(message.get("more_body"))
        await _send_error(
            send,
            503,
            "too many uploads are in progress; retry after the time in Retry-After",
            {"code": "TOO_MANY_UPLOADS", "retryable": True},
            headers=[(b"retry-after", str(self.retry_after_seconds).encode())],
        )


async def _send_error(
    send: Send,
    status: int,
    message: str,
    extensions: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": extensions}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
