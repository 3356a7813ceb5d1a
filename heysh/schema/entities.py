"""Entities of the knowledge graph: the people, places, organisations and ideas documents name."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from heysh.context import Info
from heysh.resolvers import graph as read
from heysh.schema.common import parse_global_id, parse_uuid
from heysh.schema.connections import DEFAULT_PAGE_SIZE, Connection, document_key, page_args
from heysh.stores.graph_values import ChunkKey, EntityNode, NameKey, WeightKey
from heysh.stores.postgres import PageKey

if TYPE_CHECKING:
    from heysh.schema.chunks import Chunk
    from heysh.schema.documents import Document
    from heysh.schema.domains import Domain
    from heysh.schema.relationships import Relationship


@strawberry.enum(description="Which relationships of an entity to follow.")
class RelationshipDirection(Enum):
    OUT = "OUT"
    IN = "IN"
    BOTH = "BOTH"


def entity_key(node: EntityNode) -> NameKey:
    return NameKey(node.name, node.id)


@strawberry.type(description="An entity resolved across a domain's documents.")
class Entity(relay.Node):
    id: relay.NodeID[str]
    name: str
    type: str = strawberry.field(description="PERSON, ORGANIZATION, LOCATION, EVENT or CONCEPT.")
    description: str | None
    mention_count: int = strawberry.field(description="Chunks that mention it.")
    domain_id: strawberry.Private[str]

    @classmethod
    def from_node(cls, node: EntityNode) -> Entity:
        return cls(
            id=node.id,
            name=node.name,
            type=node.type,
            description=node.description,
            mention_count=node.mention_count,
            domain_id=node.domain_id,
        )

    @strawberry.field(description="The domain this entity belongs to.")
    async def domain(
        self, info: Info
    ) -> Annotated[Domain, strawberry.lazy("heysh.schema.domains")] | None:
        from heysh.schema.domains import Domain

        (domain,) = await Domain.resolve_nodes(info=info, node_ids=[self.domain_id])
        return domain

    @strawberry.field(description="Chunks that mention it, in document order.")
    async def mentions(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Annotated[Chunk, strawberry.lazy("heysh.schema.chunks")]]:
        from heysh.schema.chunks import Chunk, chunk_key

        request = page_args(info, "mentions", first, after, ChunkKey)
        page = await read.children(
            info.context.loaders.entity_mentions, self.id, self.domain_id, request
        )
        return Connection.of("mentions", page, Chunk.from_node, chunk_key)

    @strawberry.field(description="Its relationships, heaviest first.")
    async def relationships(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        direction: RelationshipDirection = RelationshipDirection.BOTH,
        types: list[str] | None = None,
    ) -> Connection[Annotated[Relationship, strawberry.lazy("heysh.schema.relationships")]]:
        from heysh.schema.relationships import Relationship, relationship_key

        request = page_args(info, "relationships", first, after, WeightKey)
        page = await read.entity_relationships(
            info.context, self.id, self.domain_id, request, direction.value, types
        )
        return Connection.of("relationships", page, Relationship.from_node, relationship_key)

    @strawberry.field(description="Entities related to it either way, by name.")
    async def neighbors(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Entity]:
        request = page_args(info, "neighbors", first, after, NameKey)
        page = await read.children(
            info.context.loaders.entity_neighbors, self.id, self.domain_id, request
        )
        return Connection.of("neighbors", page, Entity.from_node, entity_key)

    @strawberry.field(description="Documents that mention it, newest first.")
    async def documents(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Annotated[Document, strawberry.lazy("heysh.schema.documents")]]:
        from heysh.schema.documents import Document

        request = page_args(info, "entityDocuments", first, after, PageKey)
        page = await read.entity_documents(info.context, self.id, self.domain_id, request)
        return Connection.of("entityDocuments", page, Document.from_row, document_key)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Entity | None]:
        ids = [str(parsed) if (parsed := parse_uuid(i)) else None for i in node_ids]
        nodes = await info.context.loaders.entity.load_many([i for i in ids if i is not None])
        by_id = {node.id: node for node in nodes if node is not None}
        return [cls.from_node(by_id[i]) if i in by_id else None for i in ids]


@strawberry.type
class EntityQueries:
    @strawberry.field(description="An entity in a domain the caller is a member of.")
    async def entity(self, info: Info, id: strawberry.ID) -> Entity | None:
        node_id = parse_global_id(id, "Entity")
        if node_id is None:
            return None
        (entity,) = await Entity.resolve_nodes(info=info, node_ids=[node_id])
        return entity
