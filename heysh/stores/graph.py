"""The knowledge graph in Neo4j. All Cypher comes from ``heysh.stores.cypher``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, LiteralString, TypeVar
from urllib.parse import urlsplit

from neo4j import (
    READ_ACCESS,
    AsyncDriver,
    AsyncGraphDatabase,
    AsyncManagedTransaction,
    Query,
    RoutingControl,
    TrustCustomCAs,
    unit_of_work,
)
from neo4j.exceptions import ClientError

from heysh.errors import StoreError
from heysh.stores import cypher
from heysh.stores.graph_values import (
    CandidateChunk,
    ChunkNode,
    ChunkRelation,
    Direction,
    EntityNode,
    EntityRelation,
    GraphCandidates,
    GraphCounts,
    GraphNeighborhood,
    GraphPath,
    GraphStats,
    LinkedEntity,
    PageSlice,
    RelationshipNode,
    SearchChunk,
)
from heysh.telemetry.tracing import store_span

_Node = TypeVar("_Node", EntityNode, ChunkNode, RelationshipNode)

# Neo4j's code for a transaction that outlived the timeout its client gave it.
_CLIENT_TIMEOUT = "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration"
# A statement's span is named after its constant in cypher.py: its text is ours, its
# parameters (names, document text) never go in a span.
_STATEMENT_NAMES: dict[str, str] = {
    statement: name
    for name, value in vars(cypher).items()
    if name.isupper() and not name.startswith("_")  # fragments are no statements
    for statement in ([value] if isinstance(value, str) else value)
}


def tls_options(uri: str, ca_file: Path | None) -> tuple[str, dict[str, Any]]:
    """The URI and driver options that make ``+s`` verify against ``ca_file`` (a private CA).

    The scheme says whether TLS is on, as always: ``neo4j+s://``/``bolt+s://`` verify against the
    system's CAs, or only against ``ca_file`` when it is set. The driver takes a trust store only
    with the plain scheme names, so ``+s`` becomes ``encrypted`` with that store; without
    ``ca_file``, or for any other scheme, the URI is used unchanged.
    """
    parts = urlsplit(uri)
    if ca_file is None or parts.scheme not in ("neo4j+s", "bolt+s"):
        return uri, {}
    plain = parts._replace(scheme=parts.scheme.removesuffix("+s")).geturl()
    return plain, {"encrypted": True, "trusted_certificates": TrustCustomCAs(str(ca_file))}


def create_driver(
    uri: str, user: str, password: str | None, *, ca_file: Path | None = None
) -> AsyncDriver:
    auth = (user, password) if password else None
    uri, tls = tls_options(uri, ca_file)
    # Counting a relationship type no document has written yet is fine; without this the server
    # "unknown type" notices reach the logs as warnings on every such read.
    return AsyncGraphDatabase.driver(uri, auth=auth, notifications_min_severity="OFF", **tls)


_ENTITY_PAGES: dict[EntityRelation, LiteralString] = {
    "domain": cypher.DOMAIN_ENTITY_PAGES,
    "document": cypher.DOCUMENT_ENTITY_PAGES,
    "chunk": cypher.CHUNK_ENTITY_PAGES,
    "neighbors": cypher.ENTITY_NEIGHBOR_PAGES,
}
_CHUNK_PAGES: dict[ChunkRelation, LiteralString] = {
    "document": cypher.DOCUMENT_CHUNK_PAGES,
    "mentions": cypher.ENTITY_MENTION_PAGES,
}


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

    async def delete_domain_entities(self, domain_id: str) -> None:
        """Every entity of the domain, with its mentions and relationships (for a rebuild)."""
        await self._autocommit(cypher.DELETE_DOMAIN_ENTITIES, id=domain_id)

    # --- by id (the caller's member domains in the statement) -----------------------------------

    async def entities(
        self, entity_ids: Sequence[str], domain_ids: Sequence[str]
    ) -> list[EntityNode]:
        """The entities among ``entity_ids`` that exist in one of ``domain_ids``."""
        return await self._by_id(cypher.ENTITIES_BY_ID, EntityNode, entity_ids, domain_ids)

    async def chunks(self, chunk_ids: Sequence[str], domain_ids: Sequence[str]) -> list[ChunkNode]:
        """The chunks among ``chunk_ids`` that exist in one of ``domain_ids``."""
        return await self._by_id(cypher.CHUNKS_BY_ID, ChunkNode, chunk_ids, domain_ids)

    async def relationships(
        self, relationship_ids: Sequence[str], domain_ids: Sequence[str]
    ) -> list[RelationshipNode]:
        """The relationships among ``relationship_ids`` that exist in one of ``domain_ids``."""
        return await self._by_id(
            cypher.RELATIONSHIPS_BY_ID, RelationshipNode, relationship_ids, domain_ids
        )

    async def _by_id(
        self,
        query: LiteralString,
        node_type: type[_Node],
        ids: Sequence[str],
        domain_ids: Sequence[str],
    ) -> list[_Node]:
        records = await self._read(query, ids=list(ids), domains=list(domain_ids))
        return [node_type(**record.data()) for record in records]

    # --- domain-wide reads ----------------------------------------------------------------------

    async def domain_counts(self, domain_id: str) -> GraphCounts:
        (record,) = await self._read(cypher.DOMAIN_GRAPH_COUNTS, id=domain_id)
        return GraphCounts(**{key: int(value) for key, value in record.data().items()})

    # --- pages of relation fields (one statement for every parent) ------------------------------

    async def entity_pages(
        self,
        relation: EntityRelation,
        slices: Sequence[PageSlice],
        fetch: int,
        *,
        type: str | None = None,
        name_contains: str | None = None,
    ) -> list[list[EntityNode]]:
        """Up to ``fetch`` entities per slice, by name: a domain's (``type`` and a case-blind
        ``name_contains`` filter them), a document's or a chunk's, or an entity's neighbours."""
        records = await self._read(
            _ENTITY_PAGES[relation],
            pages=_pages(slices),
            fetch=fetch,
            type=type,
            name_contains=name_contains.lower() if name_contains is not None else None,
        )
        return _by_slice(slices, records, EntityNode)

    async def chunk_pages(
        self, relation: ChunkRelation, slices: Sequence[PageSlice], fetch: int
    ) -> list[list[ChunkNode]]:
        """Up to ``fetch`` chunks per slice, in document order: a document's, or those that
        mention an entity."""
        records = await self._read(_CHUNK_PAGES[relation], pages=_pages(slices), fetch=fetch)
        return _by_slice(slices, records, ChunkNode)

    async def relationship_pages(
        self,
        slices: Sequence[PageSlice],
        fetch: int,
        direction: Direction,
        types: Sequence[str] | None,
    ) -> list[list[RelationshipNode]]:
        """Up to ``fetch`` relationships per entity, heaviest first."""
        records = await self._read(
            cypher.ENTITY_RELATIONSHIP_PAGES,
            pages=_pages(slices),
            fetch=fetch,
            direction=direction,
            types=list(types) if types is not None else None,
        )
        return _by_slice(slices, records, RelationshipNode)

    async def domain_stats(self, domain_ids: Sequence[str]) -> dict[str, GraphStats]:
        records = await self._read(cypher.DOMAIN_GRAPH_STATS, ids=list(domain_ids))
        return {
            r["id"]: GraphStats(int(r["chunks"]), int(r["entities"]), int(r["relationships"]))
            for r in records
        }

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

    # --- traversals -----------------------------------------------------------------------------

    async def neighborhood(
        self,
        start: EntityNode,
        *,
        depth: int,
        limit: int,
        max_edges: int,
        types: Sequence[str] | None,
    ) -> GraphNeighborhood:
        """Entities within ``depth`` RELATED hops of ``start`` (itself first), at most ``limit``,
        breadth first, each level heaviest edge first, then by id; and the RELATED edges among
        them, at most ``max_edges``. ``types`` (None: all) limits the edges followed and returned.

        Unchecked (the caller authorizes ``start``); every statement stays in its domain. The
        levels and the edges are read in one read transaction under the read timeout.
        """
        domain_id = start.domain_id
        type_list = None if types is None else list(types)

        @unit_of_work(timeout=self._read_timeout)
        async def work(tx: AsyncManagedTransaction) -> GraphNeighborhood:
            nodes, levels, frontier, truncated = [start], {start.id: 0}, [start.id], False
            for level in range(1, depth + 1):
                if not frontier or truncated:
                    break
                room = limit - len(nodes)
                # One more than there is room for: finding it is what says the level was cut.
                result = await tx.run(
                    cypher.NEIGHBORHOOD_LEVEL,
                    domain_id=domain_id,
                    frontier=frontier,
                    seen=list(levels),
                    types=type_list,
                    take=room + 1,
                )
                found = [EntityNode(**row) for row in await result.data()]
                truncated = len(found) > room
                found = found[:room]
                nodes.extend(found)
                levels.update((node.id, level) for node in found)
                frontier = [node.id for node in found]
            result = await tx.run(
                cypher.NEIGHBORHOOD_EDGES,
                domain_id=domain_id,
                ids=list(levels),
                levels=levels,
                types=type_list,
                take=max_edges + 1,
            )
            edges = [RelationshipNode(**row) for row in await result.data()]
            truncated = truncated or len(edges) > max_edges
            return GraphNeighborhood(nodes, edges[:max_edges], truncated)

        with store_span("neo4j", "NEIGHBORHOOD"):
            async with (
                self._read_limit(),
                self._driver.session(
                    database=self._database, default_access_mode=READ_ACCESS
                ) as session,
            ):
                return await session.execute_read(work)

    async def shortest_path(
        self, domain_id: str, from_id: str, to_id: str, max_depth: int
    ) -> GraphPath | None:
        """A shortest path of RELATED edges, either way, from one entity to another (distinct)
        of ``domain_id``, at most ``max_depth`` (up to 6) edges long; None when there is none.
        Unchecked (the caller authorizes both ends)."""
        records = await self._read(
            cypher.SHORTEST_PATH,
            domain_id=domain_id,
            from_id=from_id,
            to_id=to_id,
            max_depth=max_depth,
        )
        if not records:
            return None
        nodes = [
            EntityNode(
                id=r["id"],
                domain_id=r["domain_id"],
                name=r["name"],
                type=r["type"],
                description=r["description"],
                mention_count=r["mention_count"],
            )
            for r in records
        ]
        edges = [
            RelationshipNode(
                id=r["edge_id"],
                domain_id=domain_id,
                type=r["edge_type"],
                source_id=r["edge_source"],
                target_id=r["edge_target"],
                weight=r["edge_weight"],
            )
            for r in records[:-1]  # the last node's row carries no edge
        ]
        return GraphPath(nodes, edges)

    # --- search ---------------------------------------------------------------------------------

    async def search_hits(
        self, domain_id: str, chunk_ids: Sequence[str], max_entities: int
    ) -> dict[str, SearchChunk]:
        """The domain's chunks among ``chunk_ids`` with up to ``max_entities`` of the entities
        each mentions (by name), in one statement; chunks the graph does not hold are absent."""
        records = await self._read(
            cypher.SEARCH_HITS, ids=list(chunk_ids), domain_id=domain_id, max_entities=max_entities
        )
        found = {}
        for record in records:
            data = record.data()
            entities = [EntityNode(**entity) for entity in data.pop("entities")]
            found[data["id"]] = SearchChunk(ChunkNode(**data), entities)
        return found

    async def search_graph_candidates(
        self, domain_id: str, chunk_ids: Sequence[str], max_entities: int
    ) -> GraphCandidates:
        """The domain's chunks among ``chunk_ids``, the entities they mention (up to
        ``max_entities`` a chunk, by name), and each entity's degree and its neighbours among
        those entities, in one statement."""
        (record,) = await self._read(
            cypher.SEARCH_GRAPH_CANDIDATES,
            ids=list(chunk_ids),
            domain_id=domain_id,
            max_entities=max_entities,
        )
        entities = {}
        for row in record["entities"]:
            degree, neighbours = int(row.pop("degree")), frozenset(row.pop("neighbour_ids"))
            entities[row["id"]] = LinkedEntity(EntityNode(**row), degree, neighbours)
        chunks = {}
        for row in record["chunks"]:
            mentioned = [entities[i] for i in row.pop("entity_ids") if i in entities]
            chunks[row["id"]] = CandidateChunk(ChunkNode(**row), mentioned)
        return GraphCandidates(chunks)

    # --- plumbing -------------------------------------------------------------------------------

    async def _read(self, query: LiteralString, **params: Any) -> list[Any]:
        # The server stops a read that runs past the timeout (the driver does not retry that).
        with store_span("neo4j", _statement_name(query)):
            async with self._read_limit():
                records, _, _ = await self._driver.execute_query(
                    Query(query, timeout=self._read_timeout),
                    params,
                    database_=self._database,
                    routing_=RoutingControl.READ,
                )
        return list(records)

    @asynccontextmanager
    async def _read_limit(self) -> AsyncIterator[None]:
        """A read the server stopped at the read timeout, as a StoreError saying so."""
        try:
            yield
        except ClientError as exc:
            if exc.code != _CLIENT_TIMEOUT:
                raise
            raise StoreError(
                f"a graph read took longer than its limit of {self._read_timeout:g}s"
            ) from exc

    async def _write(self, query: LiteralString, **params: Any) -> list[Any]:
        with store_span("neo4j", _statement_name(query)):
            records, _, _ = await self._driver.execute_query(
                query, params, database_=self._database
            )
        return list(records)

    async def _autocommit(self, query: LiteralString, **params: Any) -> None:
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction.
        with store_span("neo4j", _statement_name(query)):
            async with self._driver.session(database=self._database) as session:
                result = await session.run(query, params)
                await result.consume()


def _statement_name(query: str) -> str:
    return _STATEMENT_NAMES.get(query, "cypher")


def _pages(slices: Sequence[PageSlice]) -> list[dict[str, Any]]:
    return [
        {
            "pos": pos,
            "parent": s.parent,
            "domain": s.domain,
            "after": dataclasses.asdict(s.after) if s.after is not None else None,
        }
        for pos, s in enumerate(slices)
    ]


def _by_slice(
    slices: Sequence[PageSlice], records: Sequence[Any], node_type: type[_Node]
) -> list[list[_Node]]:
    found: list[list[_Node]] = [[] for _ in slices]
    for record in records:
        found[record["pos"]] = [node_type(**row) for row in record["rows"]]
    return found
