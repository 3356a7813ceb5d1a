"""Entities of the knowledge graph: the people, places, organisations and ideas documents name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from heysh.context import Info
from heysh.schema.common import parse_global_id, parse_uuid
from heysh.stores.graph import EntityNode

if TYPE_CHECKING:
    from heysh.schema.domains import Domain


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
