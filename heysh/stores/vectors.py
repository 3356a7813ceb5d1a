"""Chunk vectors in Weaviate: one collection, one tenant per domain (native isolation).

The collection records which embedder made its vectors (model name and dimensions, in its
description), so a worker or an api configured with another embedder refuses to mix vector spaces.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
import weaviate
from weaviate import WeaviateAsyncClient
from weaviate.classes.config import Configure, DataType, Property
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, GrpcConfig
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.classes.tenants import Tenant
from weaviate.collections.classes.internal import Object
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateQueryError

from heysh.config import ConfigError
from heysh.errors import StoreError
from heysh.telemetry.tracing import traced

log = logging.getLogger(__name__)

# Importing weaviate calls warnings.simplefilter("default"), which shows every ResourceWarning
# in the process. The neo4j driver closes its sockets in the background by design, and over TLS
# that outlives asyncio.run, so a process that stops (a failed start-up check among them) would
# log "unclosed transport" after its last line. Back to the interpreter's default: hidden unless
# `python -X dev`.
if not sys.flags.dev_mode:
    warnings.filterwarnings("ignore", category=ResourceWarning)

_CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network", ".wcs.api.weaviate.io")


class VectorsRejectedError(StoreError):
    """Weaviate answered and refused the objects themselves (a wrong vector length, say):
    sending the same objects again cannot succeed."""


def create_client(
    url: str, grpc_port: int, api_key: str | None, *, ca_file: Path | None = None
) -> WeaviateAsyncClient:
    """A not-yet-connected async client for Weaviate Cloud or a self-hosted/local server.

    ``ca_file``: with an https URL, HTTP and gRPC verify the server against this CA alone.
    Init checks are skipped: they include a call to pypi.org that a server must not make.
    Readiness is checked by ``VectorStore.ping`` instead.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    auth = Auth.api_key(api_key) if api_key else None
    secure = parts.scheme == "https"
    trusted = ca_file if secure else None
    additional = None
    if trusted is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=trusted.read_bytes())
        additional = AdditionalConfig(grpc_config=GrpcConfig(credentials=credentials))
    if host.endswith(_CLOUD_SUFFIXES):
        if auth is None:
            raise StoreError("Weaviate Cloud needs an API key (HEYSH_WEAVIATE_API_KEY)")
        client = weaviate.use_async_with_weaviate_cloud(
            cluster_url=url,
            auth_credentials=auth,
            skip_init_checks=True,
            additional_config=additional,
        )
    else:
        client = weaviate.use_async_with_custom(
            http_host=host,
            http_port=parts.port or (443 if secure else 80),
            http_secure=secure,
            grpc_host=host,
            grpc_port=grpc_port,
            grpc_secure=secure,
            auth_credentials=auth,
            skip_init_checks=True,
            additional_config=additional,
        )
    if trusted is not None:
        _verify_http_with(client, trusted)
    return client


def _verify_http_with(client: WeaviateAsyncClient, ca_file: Path) -> None:
    """Make the client's HTTP side verify the server against ``ca_file`` alone.

    weaviate-client takes gRPC credentials, but its HTTP client trusts certifi's CAs, or
    SSL_CERT_FILE with ``trust_env``, which would change every HTTP client in the process
    (OpenAI's too). So the connection's factory for its httpx client is replaced by one that
    builds the same client (its headers carry the API key) with our CA.
    """
    connection = client._connection
    context = ssl.create_default_context(cafile=str(ca_file))

    def make_client(colour: str) -> httpx.AsyncClient | httpx.Client:
        if colour == "async":
            return httpx.AsyncClient(headers=connection._headers, verify=context)
        return httpx.Client(headers=connection._headers, verify=context)

    setattr(connection, "_make_client", make_client)  # noqa: B010 - mypy forbids assigning a method


@dataclass(frozen=True)
class VectorChunk:
    """A chunk as the collection holds it (its uuid and properties)."""

    chunk_id: str
    document_id: str
    index: int
    title: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class ChunkVector(VectorChunk):
    """A chunk to store, with its vector."""

    vector: list[float]


# BM25 reads these only: ids (document_id) are never words a query should match.
KEYWORD_PROPERTIES = ["text", "title"]
_RETURN_PROPERTIES = ["document_id", "chunk_index", "text", "title", "start_offset", "end_offset"]
_RECORD = re.compile(r"embedder=(\{.*\})\s*$")
# One line of Weaviate's hybrid explain_score: "Hybrid (Result Set keyword,bm25) Document <uuid>:
# original score 0.39794034, normalized score: 0.5" (vector lines say "Result Set vector,…").
_EXPLAINED = re.compile(
    r"Result Set (keyword|vector)\b[^)]*\) Document [^:]*: original score ([-+0-9.eE]+|NaN)"
)


@dataclass(frozen=True)
class EmbedderRecord:
    """The embedder whose vectors a collection holds."""

    model: str
    dimensions: int

    def __str__(self) -> str:
        return f"{self.model} ({self.dimensions} dimensions)"


class EmbedderMismatchError(ConfigError):
    """The collection holds vectors of another embedder than this process is configured with.

    A ConfigError, so `heysh worker` stops at start-up with its one line; in the api it is the
    search's ``extensions.code``.
    """

    code = "EMBEDDER_MISMATCH"


@dataclass(frozen=True)
class VectorHit(VectorChunk):
    """One chunk found by a search, with the scores the search gave it."""

    score: float
    vector_score: float | None  # cosine similarity, 1 - distance
    keyword_score: float | None  # BM25


def tenant_name(domain_id: str) -> str:
    # Tenant names allow [A-Za-z0-9_-]{1,64}; a UUID fits as is.
    return domain_id


class VectorStore:
    def __init__(self, client: WeaviateAsyncClient, collection: str) -> None:
        self._client = client
        self._name = collection
        self._recorded: EmbedderRecord | None = None  # once read, a record never changes

    async def ping(self) -> None:
        if not await self._client.is_ready():
            raise StoreError("Weaviate is not ready")

    async def ensure_collection(self, embedder_name: str, dimensions: int) -> None:
        """Create the collection recording this embedder, or check that it records this one.

        A collection made before the record existed is adopted: it gets this embedder's record.
        Raises ``EmbedderMismatchError`` naming both embedders when the record differs.
        """
        wanted = EmbedderRecord(embedder_name, dimensions)
        if not await self._client.collections.exists(self._name):
            await self._create(wanted)
        recorded = await self.recorded_embedder()
        if recorded is None:
            log.info("recording embedder %s on the existing collection %s", wanted, self._name)
            await self._client.collections.use(self._name).config.update(
                description=_description(wanted)
            )
            self._recorded = wanted
        elif recorded != wanted:
            raise EmbedderMismatchError(
                f"the Weaviate collection {self._name} holds vectors of {recorded}, but this "
                f"process embeds with {wanted}: configure the embedder the collection was built "
                "with (HEYSH_EMBEDDER, HEYSH_OPENAI_EMBEDDING_MODEL/_DIMENSIONS) or use another "
                "HEYSH_WEAVIATE_COLLECTION"
            )

    async def recorded_embedder(self) -> EmbedderRecord | None:
        """The embedder the collection records; None when there is no collection or no record."""
        if self._recorded is not None:
            return self._recorded
        try:
            config = await self._client.collections.use(self._name).config.get()
        except UnexpectedStatusCodeError as exc:
            if exc.status_code == 404:
                return None
            raise
        self._recorded = _parse_record(config.description)
        return self._recorded

    async def _create(self, embedder: EmbedderRecord) -> None:
        try:
            await self._client.collections.create(
                self._name,
                description=_description(embedder),
                multi_tenancy_config=Configure.multi_tenancy(
                    enabled=True, auto_tenant_creation=False
                ),
                vector_config=Configure.Vectors.self_provided(),
                properties=[
                    # Filterable (deletes and counts select by it), never searchable: an id is
                    # no word for BM25 to match.
                    Property(
                        name="document_id",
                        data_type=DataType.TEXT,
                        skip_vectorization=True,
                        index_searchable=False,
                        index_filterable=True,
                    ),
                    Property(name="chunk_index", data_type=DataType.INT),
                    Property(name="text", data_type=DataType.TEXT),
                    Property(name="title", data_type=DataType.TEXT),
                    Property(name="start_offset", data_type=DataType.INT),
                    Property(name="end_offset", data_type=DataType.INT),
                ],
            )
        except UnexpectedStatusCodeError as exc:
            # Another worker created it between our check and our create.
            if not await self._client.collections.exists(self._name):
                raise StoreError(f"cannot create Weaviate collection {self._name}") from exc

    @traced("weaviate")
    async def ensure_tenant(self, domain_id: str) -> None:
        collection = self._client.collections.use(self._name)
        name = tenant_name(domain_id)
        if await collection.tenants.exists(name):
            return
        await collection.tenants.create([Tenant(name=name)])

    @traced("weaviate")
    async def delete_tenant(self, domain_id: str) -> None:
        collection = self._client.collections.use(self._name)
        name = tenant_name(domain_id)
        if await collection.tenants.exists(name):
            await collection.tenants.remove([name])

    @traced("weaviate")
    async def tenant_exists(self, domain_id: str) -> bool:
        collection = self._client.collections.use(self._name)
        return await collection.tenants.exists(tenant_name(domain_id))

    @traced("weaviate")
    async def upsert_chunks(self, domain_id: str, objects: Sequence[ChunkVector]) -> None:
        """Insert or overwrite (same deterministic UUID) a batch of chunk vectors."""
        if not objects:
            return
        tenant = self._client.collections.use(self._name).with_tenant(tenant_name(domain_id))
        result = await tenant.data.insert_many(
            [
                DataObject(
                    uuid=o.chunk_id,
                    vector=o.vector,
                    properties={
                        "document_id": o.document_id,
                        "chunk_index": o.index,
                        "text": o.text,
                        "title": o.title,
                        "start_offset": o.start,
                        "end_offset": o.end,
                    },
                )
                for o in objects
            ]
        )
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise VectorsRejectedError(
                f"Weaviate rejected {len(result.errors)} chunk(s): {first.message}"
            )

    @traced("weaviate")
    async def delete_document(self, domain_id: str, document_id: str) -> int:
        """Delete every vector of a document; loops past Weaviate's per-call match limit."""
        if not await self.tenant_exists(domain_id):
            return 0
        tenant = self._client.collections.use(self._name).with_tenant(tenant_name(domain_id))
        deleted = 0
        while True:
            result = await tenant.data.delete_many(
                where=Filter.by_property("document_id").equal(document_id)
            )
            deleted += result.successful
            if result.matches == 0 or result.successful == 0:
                return deleted

    @traced("weaviate")
    async def count_document(self, domain_id: str, document_id: str) -> int:
        if not await self.tenant_exists(domain_id):
            return 0
        tenant = self._client.collections.use(self._name).with_tenant(tenant_name(domain_id))
        result = await tenant.aggregate.over_all(
            filters=Filter.by_property("document_id").equal(document_id), total_count=True
        )
        return int(result.total_count or 0)

    # --- search ---------------------------------------------------------------------------------

    @traced("weaviate")
    async def search_vector(
        self, domain_id: str, vector: Sequence[float], limit: int
    ) -> list[VectorHit]:
        """The ``limit`` chunks nearest ``vector`` (cosine); score = vector score = 1 - distance."""
        found = await self._search(
            domain_id,
            lambda api: api.near_vector(
                near_vector=list(vector),
                limit=limit,
                return_properties=_RETURN_PROPERTIES,
                return_metadata=MetadataQuery(distance=True),
            ),
        )
        hits = []
        for o in found:
            similarity = 1.0 - float(o.metadata.distance or 0.0)
            hits.append(_hit(o, similarity, vector_score=similarity, keyword_score=None))
        return hits

    @traced("weaviate")
    async def search_keyword(self, domain_id: str, query: str, limit: int) -> list[VectorHit]:
        """BM25 over the chunk text and the document title only; score = keyword score."""
        found = await self._search(
            domain_id,
            lambda api: api.bm25(
                query=query,
                query_properties=KEYWORD_PROPERTIES,
                limit=limit,
                return_properties=_RETURN_PROPERTIES,
                return_metadata=MetadataQuery(score=True),
            ),
        )
        hits = []
        for o in found:
            score = float(o.metadata.score or 0.0)
            hits.append(_hit(o, score, vector_score=None, keyword_score=score))
        return hits

    @traced("weaviate")
    async def search_hybrid(
        self, domain_id: str, query: str, vector: Sequence[float], alpha: float, limit: int
    ) -> list[VectorHit]:
        """Weaviate's hybrid search (relative score fusion; alpha 0 is pure BM25, 1 pure vector).

        The component scores come from Weaviate's explain_score, which states each result set's
        original score (BM25, and cosine similarity for the vector set); a component the hit did
        not appear in is None.
        """
        found = await self._search(
            domain_id,
            lambda api: api.hybrid(
                query=query,
                vector=list(vector),
                alpha=alpha,
                fusion_type=HybridFusion.RELATIVE_SCORE,
                query_properties=KEYWORD_PROPERTIES,
                limit=limit,
                return_properties=_RETURN_PROPERTIES,
                return_metadata=MetadataQuery(score=True, explain_score=True),
            ),
        )
        hits = []
        for o in found:
            parts = explained_scores(o.metadata.explain_score)
            score = float(o.metadata.score or 0.0)
            hits.append(
                _hit(o, score, vector_score=parts.get("vector"), keyword_score=parts.get("keyword"))
            )
        return hits

    async def _search(
        self, domain_id: str, search: Callable[[Any], Awaitable[Any]]
    ) -> list[Object[Any, Any]]:
        """The objects ``search`` finds through the query API of the domain's tenant; none when
        the collection or tenant does not exist (a domain without documents), checked only after a
        failure so a search is one call."""
        tenant = self._client.collections.use(self._name).with_tenant(tenant_name(domain_id))
        try:
            result = await search(tenant.query)
        except WeaviateQueryError:
            if not await self._client.collections.exists(self._name):
                return []
            if not await self.tenant_exists(domain_id):
                return []
            raise
        return list(result.objects)


def explained_scores(explanation: str | None) -> dict[str, float]:
    """{"keyword": BM25 score, "vector": cosine similarity} as far as Weaviate's hybrid
    explain_score states them; a result set the object was not in is absent."""
    scores: dict[str, float] = {}
    for kind, value in _EXPLAINED.findall(explanation or ""):
        try:
            scores.setdefault(kind, float(value))
        except ValueError:
            continue
    return {kind: value for kind, value in scores.items() if value == value}  # drop NaN


def _hit(
    found: Object[Any, Any],
    score: float,
    *,
    vector_score: float | None,
    keyword_score: float | None,
) -> VectorHit:
    props = found.properties
    return VectorHit(
        chunk_id=str(found.uuid),
        document_id=str(props["document_id"]),
        index=int(props["chunk_index"]),
        title=str(props.get("title") or ""),
        text=str(props["text"]),
        start=int(props["start_offset"]),
        end=int(props["end_offset"]),
        score=score,
        vector_score=vector_score,
        keyword_score=keyword_score,
    )


def _description(embedder: EmbedderRecord) -> str:
    record = json.dumps({"model": embedder.model, "dimensions": embedder.dimensions})
    return f"heysh chunk vectors; embedder={record}"


def _parse_record(description: str | None) -> EmbedderRecord | None:
    match = _RECORD.search(description or "")
    if match is None:
        return None
    try:
        data = json.loads(match.group(1))
        return EmbedderRecord(str(data["model"]), int(data["dimensions"]))
    except (ValueError, KeyError, TypeError):
        return None
