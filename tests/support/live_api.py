"""The real api served by uvicorn on a loopback port, for clients that run outside this process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import uvicorn

from heysh.app import create_app
from heysh.config import Settings

if TYPE_CHECKING:
    from heysh.local.stack import LocalStack


def free_port() -> int:
    """A port free on 127.0.0.1 right now, for a process that binds it itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_environment(
    stack: LocalStack, settings: Settings, port: int, task_queue: str
) -> dict[str, str]:
    """The variables a `heysh api` process on this stack needs (over the caller's environment):
    the mode and token verification of ``settings`` (test mode with its JWT secret, or production
    with its JWKS endpoint), 127.0.0.1:``port``, ``task_queue``, warnings only."""
    if settings.supabase_jwks_url is not None:
        auth = {
            "HEYSH_ENV": settings.env.value,
            "HEYSH_SUPABASE_URL": settings.supabase_url,
            "HEYSH_SUPABASE_JWKS_URL": settings.supabase_jwks_url,
        }
        if settings.metrics_token is not None:
            auth["HEYSH_METRICS_TOKEN"] = settings.metrics_token.get_secret_value()
    else:
        secret = settings.supabase_jwt_secret
        assert secret is not None
        auth = {"HEYSH_ENV": "test", "HEYSH_SUPABASE_JWT_SECRET": secret.get_secret_value()}
    return {
        **stack.settings_env(),
        **auth,
        "HEYSH_API_HOST": "127.0.0.1",
        "HEYSH_API_PORT": str(port),
        "HEYSH_TASK_QUEUE": task_queue,
        "HEYSH_LOG_LEVEL": "WARNING",
    }


@asynccontextmanager
async def serve_api(settings: Settings) -> AsyncIterator[str]:
    """Serve ``create_app(settings)`` on a free 127.0.0.1 port; yields the /graphql URL.

    uvicorn runs as a task on the caller's event loop, so the caller must await (for example a
    subprocess) rather than block while a client talks to it.
    """
    # Binding the socket here, not handing uvicorn a port number, leaves no window in which
    # another process could take the port between choosing and listening.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # as `heysh api` serves
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise AssertionError("uvicorn stopped before it started serving")
            await asyncio.sleep(0.05)
        host, port = sock.getsockname()
        yield f"http://{host}:{port}/graphql"
    finally:
        server.should_exit = True
        await task
        sock.close()
