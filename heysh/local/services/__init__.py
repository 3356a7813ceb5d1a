"""The local services as foreground child processes that we own: one module per service.

``supervision`` holds what they share (start, wait until ready, stop; the process group and the
parent-death signal); ``postgres``, ``neo4j``, ``weaviate`` and ``temporal`` say how to prepare,
run and probe each; ``proxy`` is the secure profile's TLS front for the last two. Import from
here: these names are the package's whole public surface.
"""

from heysh.local.services.neo4j import Neo4jService
from heysh.local.services.postgres import PostgresService
from heysh.local.services.proxy import TlsProxyService, TlsRoute
from heysh.local.services.supervision import LocalService, ServiceError, unsearchable_ancestor
from heysh.local.services.temporal import TemporalService
from heysh.local.services.weaviate import WeaviateService

__all__ = [
    "LocalService",
    "Neo4jService",
    "PostgresService",
    "ServiceError",
    "TemporalService",
    "TlsProxyService",
    "TlsRoute",
    "WeaviateService",
    "unsearchable_ancestor",
]
