"""Chunk vectors in Weaviate: one collection, one tenant per domain (native isolation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import weaviate
from weaviate import WeaviateAsyncClient
from weaviate.classes.config import Configure, DataType, Property
from weaviate.classes.data import DataObject
from weaviate.classes.init import Auth
from weaviate.classes.query import Filter
from weaviate.classes.tenants import Tenant
from weaviate.exceptions import UnexpectedStatusCodeError

from heysh.errors import StoreError

_CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network", ".wcs.api.weaviate.io")


class VectorsRejectedError(StoreError):
    """Weaviate answered and refused the objects themselves (a wrong vector length, say):
    sending the same objects again cannot succeed."""


def create_client(url: str, grpc_port: int, api_key: str | None) -> WeaviateAsyncClient:
    """A not-yet-connected async client for Weaviate Cloud or a self-hosted/local server.

    Init checks are skipped: they include a call to pypi.org that a server must not make.
    Readiness is checked by ``VectorStore.ping`` instead.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    auth = Auth.api_key(api_key) if api_key else None
    if host.endswith(_CLOUD_SUFFIXES):
        if auth is None:
            raise StoreError("Weaviate Cloud needs an API key (HEYSH_WEAVIATE_API_KEY)")
        return weaviate.use_async_with_weaviate_cloud(
            cluster_url=url, auth_credentials=auth, skip_init_checks=True
        )
    secure = parts.scheme == "https"
    return weaviate.use_async_with_custom(
        http_host=host,
        http_port=parts.port or (443 if secure else 80),
        http_secure=secure,
        grpc_host=host,
        grpc_port=grpc_port,
        grpc_secure=secure,
        auth_credentials=auth,
        skip_init_checks=True,
    )


@dataclass(frozen=True)
class ChunkVector:
    chunk_id: str
    document_id: str
    index: int
    title: str
    text: str
    start: int
    end: int
    vector: list[float]


def tenant_name(domain_id: str) -> str:
    # Tenant names allow [A-Za-z0-9_-]{1,64}; a UUID fits as is.
    return domain_id


class VectorStore:
    def __init__(self, client: WeaviateAsyncClient, collection: str) -> None:
        self._client = client
        self._name = collection

    async def ping(self) -> None:
        if not await self._client.is_ready():
            raise StoreError("Weaviate is not ready")

    async def ensure_collection(self) -> None:
        if await self._client.collections.exists(self._name):
            return
        try:
            await self._client.collections.create(
                self._name,
                multi_tenancy_config=Configure.multi_tenancy(
                    enabled=True, auto_tenant_creation=False
                ),
                vector_config=Configure.Vectors.self_provided(),
                properties=[
                    Property(name="document_id", data_type=DataType.TEXT, skip_vectorization=True),
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

    async def ensure_tenant(self, domain_id: str) -> None:
        collection = self._client.collections.use(self._name)
        name = tenant_name(domain_id)
        if await collection.tenants.exists(name):
            return
        await collection.tenants.create([Tenant(name=name)])

    async def delete_tenant(self, domain_id: str) -> None:
        collection = self._client.collections.use(self._name)
        name = tenant_name(domain_id)
        if await collection.tenants.exists(name):
            await collection.tenants.remove([name])

    async def tenant_exists(self, domain_id: str) -> bool:
        collection = self._client.collections.use(self._name)
        return await collection.tenants.exists(tenant_name(domain_id))

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

    async def count_document(self, domain_id: str, document_id: str) -> int:
        if not await self.tenant_exists(domain_id):
            return 0
        tenant = self._client.collections.use(self._name).with_tenant(tenant_name(domain_id))
        result = await tenant.aggregate.over_all(
            filters=Filter.by_property("document_id").equal(document_id), total_count=True
        )
        return int(result.total_count or 0)

    async def count_tenant(self, domain_id: str) -> int:
        if not await self.tenant_exists(domain_id):
            return 0
        tenant = self._client.collections.use(self._name).with_tenant(tenant_name(domain_id))
        result = await tenant.aggregate.over_all(total_count=True)
        return int(result.total_count or 0)
