"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/) on Strawberry's view.

- The response media type is negotiated from Accept: `application/graphql-response+json` when
  the client asks for it, the legacy `application/json` for `*/*`, no Accept, or when the client
  prefers it; 406 when it accepts neither.
- With `application/graphql-response+json`, a request that never reached execution (parse,
  validation or variable-coercion failure, refused authentication) answers 4xx with no `data`
  key. With `application/json` it stays 200 with `"data": null`, as clients of that type expect.
- Requests refused before GraphQL runs (body not JSON, not an object, wrong method) get a
  GraphQL-style error body with `extensions.code` instead of Strawberry's plain text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"

ContextT = TypeVar("ContextT")
RootValueT = TypeVar("RootValueT")

# extensions.code of a request-level error -> its status under graphql-response+json.
_REQUEST_ERROR_STATUS = {
    "UNAUTHENTICATED": 401,
    "INTERNAL_SERVER_ERROR": 500,
    "STORE_UNAVAILABLE": 503,
}
_HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
}
# A JSON text that starts with `{` is an object or not JSON at all, so this settles the common
# case without decoding a body that may be megabytes long twice.
_STARTS_AS_OBJECT = re.compile(rb"[ \t\r\n]*\{")


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header; None when it allows neither JSON type.

    Each type takes the q of the most specific range that matches it (RFC 9110, 12.5.1). On a
    tie, graphql-response+json wins only when named outright: `*/*` and `application/*` get
    application/json, as the spec asks of servers during its watershed.
    """
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    ranges = list(_media_ranges(accept))
    best: str | None = None
    best_key = (0.0, False)
    for candidate in (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON):
        q, exact = _quality(candidate, ranges)
        key = (q, exact and candidate == GRAPHQL_RESPONSE_JSON)
        if q > 0 and key > best_key:
            best, best_key = candidate, key
    return best


def _media_ranges(accept: str) -> Iterator[tuple[str, float]]:
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = -1.0
        if media_range and 0 <= q <= 1:  # a malformed q drops its range rather than the request
            yield media_range.lower(), q


def _quality(media_type: str, ranges: Sequence[tuple[str, float]]) -> tuple[float, bool]:
    """The q the ranges give ``media_type``, and whether the deciding range named it outright."""
    kind = media_type.split("/")[0]
    for specific in (media_type, f"{kind}/*", "*/*"):
        matches = [q for media_range, q in ranges if media_range == specific]
        if matches:
            return max(matches), specific == media_type
    return 0.0, False


def content_type(media_type: str) -> str:
    # graphql-response+json is not in Starlette's list of types that get a charset by default.
    return f"{media_type}; charset=utf-8" if media_type == GRAPHQL_RESPONSE_JSON else media_type


def is_request_error(response: GraphQLHTTPResponse) -> bool:
    """True when the operation never executed: null data and no error located in the result."""
    errors = response.get("errors") or []
    return (
        response.get("data") is None
        and bool(errors)
        and not any(isinstance(error, Mapping) and "path" in error for error in errors)
    )


def request_error_status(response: GraphQLHTTPResponse) -> int:
    for error in response.get("errors") or []:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        code = extensions.get("code") if isinstance(extensions, Mapping) else None
        if code in _REQUEST_ERROR_STATUS:
            return _REQUEST_ERROR_STATUS[code]
    return 400


def error_response(request: Request, exc: HTTPException) -> Response:
    """A GraphQL-style body for a request refused before (or instead of) execution."""
    status, headers = exc.status_code, {}
    cause = exc.__cause__
    if (
        request.method == "GET"
        and isinstance(cause, InvalidOperationTypeError)
        and cause.operation_type is OperationType.MUTATION
    ):
        # The spec's rule for a mutation sent with GET; POST is the method that can run it.
        status, headers = 405, {"Allow": "POST"}
    code = _HTTP_ERROR_CODES.get(status, "BAD_REQUEST")
    media_type = negotiate(request.headers.get("accept")) or APPLICATION_JSON
    return JSONResponse(
        {"errors": [{"message": exc.reason, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers,
        media_type=content_type(media_type),
    )


class GraphQLOverHTTP(GraphQL[ContextT, RootValueT]):
    """Strawberry's ASGI view, answering as the GraphQL over HTTP spec describes."""

    # Called with the code of each request refused before GraphQL ran (the api's metrics).
    on_refusal: Callable[[str], object] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            try:
                response = await self.run(request)
            except HTTPException as exc:
                response = error_response(request, exc)
                if self.on_refusal is not None:
                    self.on_refusal(_HTTP_ERROR_CODES.get(response.status_code, "BAD_REQUEST"))
            await response(scope, receive, send)
        finally:
            await request.close()  # the temporary files a multipart upload was spooled into

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # create_response reads the media type from here. An Accept that allows neither JSON type
        # is refused in parse_http_body, after the view has had its chance to serve GraphiQL.
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if negotiate(request.headers.get("accept")) is None:
            raise HTTPException(
                406, f"Accept must allow {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}"
            )
        await self._require_json_objects(request)
        return await super().parse_http_body(request)

    async def _require_json_objects(self, request: AsyncHTTPRequestAdapter) -> None:
        """Refuse, with a 400, a JSON body or multipart field that is valid JSON but no object.

        Strawberry assumes objects and fails with a 500 otherwise. heysh does not enable
        batching, so a list is as wrong as a number.
        """
        if request.method != "POST":
            return
        mime_type, _ = parse_content_type(request.content_type or "")
        # The same tests Strawberry applies before it decodes the body.
        if APPLICATION_JSON in mime_type:
            body = await request.get_body()
            if not _STARTS_AS_OBJECT.match(body) and not isinstance(self.parse_json(body), dict):
                raise HTTPException(400, "The request body must be a JSON object")
        elif self.multipart_uploads_enabled and mime_type == "multipart/form-data":
            form = (await request.get_form_data()).form  # Starlette parses the form once
            for field in ("operations", "map"):
                value = form.get(field, "{}")
                if isinstance(value, str | bytes) and not isinstance(self.parse_json(value), dict):
                    raise HTTPException(400, f"The multipart field `{field}` must be a JSON object")

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or APPLICATION_JSON
        status: int | None = None
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and not isinstance(response_data, list)
            and is_request_error(response_data)
        ):
            status = request_error_status(response_data)
            response_data = response_data.copy()
            del response_data["data"]
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = content_type(media_type)
        if status is not None:
            response.status_code = status
            if status == 401:
                response.headers["www-authenticate"] = "Bearer"
        return response
