"""The knowledge graph in Neo4j. All Cypher comes from ``heysh.stores.cypher``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

from neo4j import AsyncDriver, AsyncGraphDatabase, RoutingControl

from heysh.stores import cypher


def create_driver(uri: str, user: str, password: str | None) -> AsyncDriver:
    auth = (user, password) if password else None
    return AsyncGraphDatabase.driver(uri, auth=auth)


@dataclass(frozen=True)
class GraphCounts:
    documents: int
    chunks: int
    entities: int
    mentions: int
    relationships: int
    total_weight: int


@dataclass(frozen=True)
class EntityRef:
    id: str
    name: str
    type: str


class GraphStore:
    def __init__(self, driver: AsyncDriver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database

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

    async def relation_impact(self, rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """(deleted, weakened) if this evidence were withdrawn."""
        (record,) = await self._read(cypher.RELATION_IMPACT, rows=list(rows))
        return int(record["deleted"] or 0), int(record["weakened"] or 0)

    async def strip_relation_evidence(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._write(cypher.STRIP_RELATION_EVIDENCE, rows=list(rows))

    async def entities_only_in_document(
        self, document_id: str, entity_ids: Sequence[str]
    ) -> list[EntityRef]:
        records = await self._read(
            cypher.ENTITIES_ONLY_IN_DOCUMENT, document_id=document_id, entity_ids=list(entity_ids)
        )
        return [EntityRef(r["id"], r["name"], r["type"]) for r in records]

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
        records, _, _ = await self._driver.execute_query(
            query, params, database_=self._database, routing_=RoutingControl.READ
        )
        return list(records)

    async def _write(self, query: LiteralString, **params: Any) -> list[Any]:
        records, _, _ = await self._driver.execute_query(query, params, database_=self._database)
        return list(records)

    async def _autocommit(self, query: LiteralString, **params: Any) -> None:
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction.
        async with self._driver.session(database=self._database) as session:
            result = await session.run(query, params)
            await result.consume()
