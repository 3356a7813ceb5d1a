"""The gateway: a Starlette app serving GraphQL (HTTP + WebSocket), /healthz and /readyz."""

from __future__ import annotations

import logging
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
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET

from heysh.auth import AuthError, TokenVerifier, User, bearer_token
from heysh.config import Settings
from heysh.context import Context
from heysh.graphiql import GraphiQLPage
from heysh.http import GraphQLOverHTTP
from heysh.limits import BodyLimit, UploadSlots
from heysh.schema import build_schema
from heysh.services import Services, open_services

log = logging.getLogger(__name__)


class HeyshGraphQL(GraphQLOverHTTP[Context, None]):
    """The GraphQL over HTTP view (heysh/http.py) with heysh's request context and token check."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            multipart_uploads_enabled=True,
        )
        self.services: Services | None = None
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
            return Context(self.services, None, "connection_init carried no valid token")
        user, error = await self._authenticate(request.headers.get("authorization"))
        return Context(self.services, user, error)

    async def on_ws_connect(self, context: Context) -> Any:
        header = (context.connection_params or {}).get("Authorization")
        user, error = await self._authenticate(header if isinstance(header, str) else None)
        if user is None:
            raise ConnectionRejectionError({"message": error, "code": "UNAUTHENTICATED"})
        context.sign_in(user)
        return UNSET

    async def _authenticate(self, header: str | None) -> tuple[User | None, str | None]:
        assert self.verifier is not None
        try:
            return await self.verifier.verify(bearer_token(header)), None
        except AuthError as exc:
            return None, str(exc)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    graphql = HeyshGraphQL(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, lazy=True) as services:
            verifier = TokenVerifier(settings)
            graphql.services, graphql.verifier = services, verifier
            app.state.services = services
            try:
                yield
            finally:
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
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            # GraphiQL's files exist as routes only where GraphiQL is on: elsewhere they are 404.
            *([graphql.graphiql.route()] if graphql.graphiql is not None else []),
        ],
        lifespan=lifespan,
    )
