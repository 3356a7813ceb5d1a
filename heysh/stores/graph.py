"""The knowledge graph in Neo4j. All Cypher comes from ``heysh.stores.cypher``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

from neo4j import AsyncDriver, AsyncGraphDatabase, Query, RoutingControl
from neo4j.exceptions import ClientError

from heysh.errors import StoreError
from heysh.stores import cypher

# Neo4j's code for a transaction that outlived the timeout its client gave it.
_CLIENT_TIMEOUT = "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration"


def create_driver(uri: str, user: str, password: str | None) -> AsyncDriver:
    auth = (user, password) if password else None
    # Counting a relationship type no document has written yet is fine; without this the server
    # "unknown type" notices reach the logs as warnings on every such read.
    return AsyncGraphDatabase.driver(uri, auth=auth, notifications_min_severity="OFF")


@dataclass(frozen=True)
class EntityNode:
    id: str
    domain_id: str
    name: str
    type: str
    description: str | None
    mention_count: int  # chunks that mention it, across the domain's documents


@dataclass(frozen=True)
class ChunkNode:
    id: str
    domain_id: str
    document_id: str
    index: int
    start: int  # character offsets of the chunk in its document's text
    end: int
    text: str


@dataclass(frozen=True)
class RelationshipNode:
    id: str
    domain_id: str
    type: str
    source_id: str
    target_id: str
    weight: int  # chunks, across the domain's documents, that state it


@dataclass(frozen=True)
class GraphCounts:
    documents: int
    chunks: int
    entities: int
    mentions: int
    relationships: int
    total_weight: int


class GraphStore:
    def __init__(
        self, driver: AsyncDriver, database: str | None = None, *, read_timeout: float = 10.0
    ) -> None:
        self._driver = driver
        self._database = database
        self._read_timeout = read_timeout

    async def ping(self) -> None:
        await self._read(cypher.PING)

    async def ensure_schema(self) -> None:
        for statement in cypher.SCHEMA:
            await self._write(statement)

    # --- domains --------------------------------------------------------------------------------

    async def merge_domain(self, domain_id: str, name: str) -> None:
        await self._write(cypher.MERGE_DOMAIN, id=domain_id, name=name)

    async def delete_domain(self, domain_id: str) -> None:
        for statement in (
            cypher.DELETE_DOMAIN_CHUNKS,
            cypher.DELETE_DOMAIN_ENTITIES,
            cypher.DELETE_DOMAIN_DOCUMENTS,
        ):
            await self._autocommit(statement, id=domain_id)
        await self._write(cypher.DELETE_DOMAIN_NODE, id=domain_id)

    async def count_domain_nodes(self, domain_id: str) -> int:
        records = await self._read(cypher.COUNT_DOMAIN_NODES, id=domain_id)
        return int(records[0]["n"])

    async def delete_domain_entities(self, domain_id: str) -> None:
        """Every entity of the domain, with its mentions and relationships (for a rebuild)."""
        await self._autocommit(cypher.DELETE_DOMAIN_ENTITIES, id=domain_id)

    async def entities(self, entity_ids: Sequence[str]) -> list[EntityNode]:
        """The entities among ``entity_ids`` that exist; unchecked (the caller authorizes)."""
        records = await self._read(cypher.ENTITIES_BY_ID, ids=list(entity_ids))
        return [EntityNode(**record.data()) for record in records]

    async def chunks(self, chunk_ids: Sequence[str]) -> list[ChunkNode]:
        """The chunks among ``chunk_ids`` that exist; unchecked (the caller authorizes)."""
        records = await self._read(cypher.CHUNKS_BY_ID, ids=list(chunk_ids))
        return [ChunkNode(**record.data()) for record in records]

    async def relationships(self, relationship_ids: Sequence[str]) -> list[RelationshipNode]:
        """The relationships among ``relationship_ids`` that exist; unchecked (the caller
        authorizes)."""
        records = await self._read(cypher.RELATIONSHIPS_BY_ID, ids=list(relationship_ids))
        return [RelationshipNode(**record.data()) for record in records]

    async def entity_keys(self, domain_id: str) -> list[tuple[str, str, str]]:
        """(id, name, type) of every entity of the domain."""
        records = await self._read(cypher.DOMAIN_ENTITY_KEYS, id=domain_id)
        return [(r["id"], r["name"], r["type"]) for r in records]

    async def relationship_weights(self, domain_id: str) -> dict[str, int]:
        """Every relationship of the domain by id, with its weight (for checks and repairs)."""
        records = await self._read(cypher.DOMAIN_RELATIONSHIP_WEIGHTS, id=domain_id)
        return {r["id"]: int(r["weight"]) for r in records}

    async def domain_counts(self, domain_id: str) -> GraphCounts:
        (record,) = await self._read(cypher.DOMAIN_GRAPH_COUNTS, id=domain_id)
        return GraphCounts(**{key: int(value) for key, value in record.data().items()})

    # --- documents ------------------------------------------------------------------------------

    async def merge_document(self, domain_id: str, document_id: str, title: str) -> None:
        await self._write(cypher.MERGE_DOCUMENT, domain_id=domain_id, id=document_id, title=title)

    async def merge_chunks(
        self, domain_id: str, document_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        await self._write(
            cypher.MERGE_CHUNKS, domain_id=domain_id, document_id=document_id, rows=list(rows)
        )

    async def merge_entities(self, domain_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._write(cypher.MERGE_ENTITIES, domain_id=domain_id, rows=list(rows))

    async def merge_relations(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._write(cypher.MERGE_RELATIONS, rows=list(rows))

    async def set_relation_weights(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._write(cypher.SET_RELATION_WEIGHTS, rows=list(rows))

    async def delete_document_chunks(self, document_id: str) -> None:
        await self._autocommit(cypher.DELETE_DOCUMENT_CHUNKS, id=document_id)

    async def delete_orphan_entities(self, entity_ids: Sequence[str]) -> int:
        records = await self._write(cypher.DELETE_ORPHAN_ENTITIES, entity_ids=list(entity_ids))
        return int(records[0]["deleted"]) if records else 0

    async def delete_document_node(self, document_id: str) -> None:
        await self._write(cypher.DELETE_DOCUMENT_NODE, id=document_id)

    async def count_document_chunks(self, document_id: str) -> int:
        records = await self._read(cypher.COUNT_DOCUMENT_CHUNKS, id=document_id)
        return int(records[0]["n"])

    async def entity_documents(self, domain_id: str, name: str) -> dict[str, list[str]]:
        records = await self._read(cypher.ENTITY_DOCUMENTS, domain_id=domain_id, name=name)
        return {r["id"]: sorted(r["documents"]) for r in records}

    # --- plumbing -------------------------------------------------------------------------------

    async def _read(self, query: LiteralString, **params: Any) -> list[Any]:
        # The server stops a read that runs past the timeout (the driver does not retry that).
        try:
            records, _, _ = await self._driver.execute_query(
                Query(query, timeout=self._read_timeout),
                params,
                database_=self._database,
                routing_=RoutingControl.READ,
            )
        except ClientError as exc:
            if exc.code != _CLIENT_TIMEOUT:
                raise
            raise StoreError(
                f"a graph read took longer than its limit of {self._read_timeout:g}s"
            ) from exc
        return list(records)

    async def _write(self, query: LiteralString, **params: Any) -> list[Any]:
        records, _, _ = await self._driver.execute_query(query, params, database_=self._database)
        return list(records)

    async def _autocommit(self, query: LiteralString, **params: Any) -> None:
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction.
        async with self._driver.session(database=self._database) as session:
            result = await session.run(query, params)
            await result.consume()
