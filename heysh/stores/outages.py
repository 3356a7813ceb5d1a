"""What an outage of a backing store looks like, for every client heysh uses: the one place.

The api turns these into ``StoreError`` (``extensions.code`` STORE_UNAVAILABLE) whatever query or
mutation met them. Driver messages name hosts, ports and server internals, so a caller gets only
the kind of store that is down; the driver's own error goes to the log.
"""

from __future__ import annotations

import grpc
import httpx
import psycopg
from neo4j.exceptions import (
    ConnectionAcquisitionTimeoutError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)
from temporalio.service import RPCError, RPCStatusCode
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateClosedClientError,
    WeaviateConnectionError,
    WeaviateGRPCUnavailableError,
    WeaviateRetryError,
    WeaviateStartUpError,
    WeaviateTimeoutError,
)

from heysh.errors import StoreError

# Followed through __cause__/__context__: clients wrap the transport error in their own types.
_MAX_CHAIN = 16

_NEO4J = (ServiceUnavailable, SessionExpired, ConnectionAcquisitionTimeoutError, TransientError)
_WEAVIATE = (
    WeaviateConnectionError,
    WeaviateGRPCUnavailableError,
    WeaviateRetryError,  # the client's own retries of an UNAVAILABLE gRPC call ran out
    WeaviateStartUpError,
    WeaviateTimeoutError,
    WeaviateClosedClientError,
)
_GRPC_DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# What a gateway in front of Weaviate (Weaviate Cloud's load balancer, a TLS proxy) answers
# over HTTP while Weaviate behind it is down: bad gateway, unavailable, gateway timeout.
_GATEWAY_DOWN = (502, 503, 504)


def _store_of(exc: BaseException) -> str | None:
    """The kind of store ``exc`` says is unreachable, or None when it is no outage."""
    if isinstance(exc, psycopg.OperationalError):  # includes psycopg_pool.PoolTimeout
        return "database"
    if isinstance(exc, _NEO4J):
        return "graph store"
    if isinstance(exc, _WEAVIATE):
        return "vector store"
    if isinstance(exc, UnexpectedStatusCodeError) and exc.status_code in _GATEWAY_DOWN:
        return "vector store"
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _GRPC_DOWN:
        return "vector store"  # Weaviate is the only store heysh reaches through grpcio
    if isinstance(exc, httpx.TransportError):
        return "vector store"  # likewise the only store behind httpx (JWKS fetches never raise)
    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.UNAVAILABLE:
        return "workflow service"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in links and len(links) < _MAX_CHAIN:
        links.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return links


def store_outage(exc: BaseException) -> StoreError | None:
    """A client-safe ``StoreError`` when ``exc`` (or what it wraps) is a store outage."""
    for link in _chain(exc):
        store = _store_of(link)
        if store is not None:
            return StoreError(f"the {store} is temporarily unavailable; try again shortly")
    return None
