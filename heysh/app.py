"""The gateway: a Starlette app serving GraphQL (HTTP + WebSocket), /healthz and /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET

from heysh.auth import AuthError, TokenVerifier, User, bearer_token
from heysh.config import Settings
from heysh.context import Context
from heysh.graphiql import GraphiQLPage
from heysh.http import GraphQLOverHTTP
from heysh.hub import CHANNELS, RunHub
from heysh.limits import BodyLimit, UploadSlots
from heysh.schema import build_schema
from heysh.services import Services, open_services
from heysh.stores.notifications import PostgresListener
from heysh.telemetry.logs import request_id_middleware
from heysh.telemetry.metrics import ApiMetrics, api_metrics, metrics_middleware, metrics_routes

log = logging.getLogger(__name__)


class HeyshGraphQL(GraphQLOverHTTP[Context, None]):
    """The GraphQL over HTTP view (heysh/http.py) with heysh's request context and token check."""

    def __init__(self, settings: Settings, metrics: ApiMetrics | None = None) -> None:
        super().__init__(
            build_schema(settings, metrics),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            multipart_uploads_enabled=True,
        )
        self.max_subscriptions_per_connection = settings.max_subscriptions_per_connection
        self.on_refusal = metrics.count_code if metrics is not None else None
        self.services: Services | None = None
        self.hub: RunHub | None = None
        self.verifier: TokenVerifier | None = None
        # Our own page instead of Strawberry's, which loads GraphiQL from a CDN.
        self.graphiql = GraphiQLPage() if settings.graphiql_enabled else None

    async def render_graphql_ide(self, request: Request) -> Response:
        assert self.graphiql is not None, "Strawberry renders an IDE only when graphql_ide is set"
        return self.graphiql.page()

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        assert self.services is not None, "lifespan not started"
        if isinstance(request, WebSocket):
            # A WebSocket authenticates once, in connection_init: see on_ws_connect.
            context = Context(
                self.services, None, "connection_init carried no valid token", hub=self.hub
            )
            context.websocket = request
            return context
        user, error = await self._authenticate(request.headers.get("authorization"))
        return Context(self.services, user, error, hub=self.hub)

    async def on_ws_connect(self, context: Context) -> Any:
        header = (context.connection_params or {}).get("Authorization")
        user, error = await self._authenticate(header if isinstance(header, str) else None)
        if user is None:
            raise ConnectionRejectionError({"message": error, "code": "UNAUTHENTICATED"})
        context.sign_in(user)
        if user.expires_at is not None and context.websocket is not None:
            close_when_expired(context.websocket, user.expires_at)
        return UNSET

    async def _authenticate(self, header: str | None) -> tuple[User | None, str | None]:
        assert self.verifier is not None
        try:
            return await self.verifier.verify(bearer_token(header)), None
        except AuthError as exc:
            return None, str(exc)


EXPIRED_TOKEN_CLOSE_CODE = 4403  # graphql-transport-ws's Forbidden, used for both protocols


def close_when_expired(websocket: WebSocket, expires_at: float) -> None:
    """Close the socket with EXPIRED_TOKEN_CLOSE_CODE when the token it signed in with expires:
    a connection must not outlive the credential that opened it."""

    async def close() -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the client or the server
            await websocket.close(code=EXPIRED_TOKEN_CLOSE_CODE, reason="token expired")

    loop = asyncio.get_running_loop()
    delay = max(0.0, expires_at - time.time())
    loop.call_later(delay, lambda: _expiries.add(loop.create_task(close())))


_expiries: set[asyncio.Task[None]] = set()  # strong references until each close has run


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    metrics = api_metrics(settings)  # None where metrics are off: nothing measured or served
    graphql = HeyshGraphQL(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, lazy=True) as services:
            verifier = TokenVerifier(settings)
            hub = RunHub(
                services.runs,
                services.domain_events,
                services.postgres,
                settings.subscriber_queue_limit,
            )
            listener = PostgresListener(
                settings.database_url.get_secret_value(), CHANNELS, hub.notify, hub.catch_up
            )
            listener.start()
            graphql.services, graphql.verifier, graphql.hub = services, verifier, hub
            app.state.services, app.state.hub = services, hub
            if metrics is not None:
                metrics.watch(hub, services.engine)
            try:
                yield
            finally:
                await listener.stop()
                await verifier.aclose()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        services: Services = request.app.state.services
        problems = await services.readiness()
        backends = {
            name: {"status": "down", "error": problem} if problem else {"status": "up"}
            for name, problem in problems.items()
        }
        ready = all(problem is None for problem in problems.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "backends": backends},
            status_code=200 if ready else 503,
        )

    # JSON-escaped content can grow past its raw size; anything beyond this is no document.
    body_limit = 2 * settings.max_document_bytes + 1024 * 1024
    return Starlette(
        middleware=[
            *metrics_middleware(metrics),  # outermost: times every request, refusals too
            *request_id_middleware(),  # the X-Request-ID every log line of a request carries
            Middleware(BodyLimit, limit=body_limit),
            Middleware(
                UploadSlots,
                slots=settings.max_concurrent_uploads,
                threshold=settings.upload_threshold_bytes,
                wait_seconds=settings.upload_wait_seconds,
            ),
        ],
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *metrics_routes(metrics),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            # GraphiQL's files exist as routes only where GraphiQL is on: elsewhere they are 404.
            *([graphql.graphiql.route()] if graphql.graphiql is not None else []),
        ],
        lifespan=lifespan,
    )
