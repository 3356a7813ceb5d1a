"""Relationships: typed, weighted edges between two entities of one domain."""

from __future__ import annotations

from collections.abc import Iterable

import strawberry
from strawberry import relay

from heysh.context import Info
from heysh.resolvers import graph as read
from heysh.schema.chunks import Chunk, chunk_key
from heysh.schema.common import parse_uuid
from heysh.schema.connections import DEFAULT_PAGE_SIZE, Connection, page_args
from heysh.schema.entities import Entity
from heysh.stores.graph_values import ChunkKey, RelationshipNode, WeightKey


@strawberry.type(description="A typed edge from one entity to another, stated by document chunks.")
class Relationship(relay.Node):
    id: relay.NodeID[str]
    type: str = strawberry.field(description="What the source is to the target, e.g. WORKED_AT.")
    weight: int = strawberry.field(
        description="How many chunks, across the domain's documents, state it."
    )
    domain_id: strawberry.Private[str]
    source_id: strawberry.Private[str]
    target_id: strawberry.Private[str]

    @classmethod
    def from_node(cls, node: RelationshipNode) -> Relationship:
        return cls(
            id=node.id,
            type=node.type,
            weight=node.weight,
            domain_id=node.domain_id,
            source_id=node.source_id,
            target_id=node.target_id,
        )

    @strawberry.field(description="The entity the relationship starts from.")
    async def source(self, info: Info) -> Entity | None:
        (entity,) = await Entity.resolve_nodes(info=info, node_ids=[self.source_id])
        return entity

    @strawberry.field(description="The entity the relationship points to.")
    async def target(self, info: Info) -> Entity | None:
        (entity,) = await Entity.resolve_nodes(info=info, node_ids=[self.target_id])
        return entity

    @strawberry.field(description="The chunks that state it, in document order.")
    async def evidence(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Chunk]:
        request = page_args(info, "evidence", first, after, ChunkKey)
        node = RelationshipNode(
            self.id, self.domain_id, self.type, self.source_id, self.target_id, self.weight
        )
        page = await read.relationship_evidence(info.context, node, request)
        return Connection.of("evidence", page, Chunk.from_node, chunk_key)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Relationship | None]:
        ids = [str(parsed) if (parsed := parse_uuid(i)) else None for i in node_ids]
        loader = info.context.loaders.relationship
        nodes = await loader.load_many([i for i in ids if i is not None])
        by_id = {node.id: node for node in nodes if node is not None}
        return [cls.from_node(by_id[i]) if i in by_id else None for i in ids]


def relationship_key(node: RelationshipNode) -> WeightKey:
    return WeightKey(node.weight, node.id)
