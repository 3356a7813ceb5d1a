"""Graph traversals: an entity's neighbourhood, and the shortest path between two entities."""

from __future__ import annotations

import strawberry

from heysh.context import Info
from heysh.resolvers import traversals
from heysh.schema.common import parse_global_uuid
from heysh.schema.entities import Entity
from heysh.schema.relationships import Relationship


@strawberry.type(description="Entities around a start entity and the relationships among them.")
class Subgraph:
    nodes: list[Entity] = strawberry.field(
        description="The start entity, then each breadth-first level, heaviest edge first."
    )
    edges: list[Relationship] = strawberry.field(
        description="Relationships among the nodes, earliest levels first, then heaviest."
    )
    truncated: bool = strawberry.field(
        description="True when nodes or edges were left out to stay within the limit."
    )


@strawberry.type(description="A shortest chain of relationships from one entity to another.")
class Path:
    nodes: list[Entity] = strawberry.field(description="From the first entity to the last.")
    edges: list[Relationship] = strawberry.field(
        description="edges[i] joins nodes[i] and nodes[i + 1]; its source and target say which "
        "way it points."
    )
    length: int = strawberry.field(description="The number of edges; 0 from an entity to itself.")


def _entity_id(global_id: strawberry.ID) -> str | None:
    parsed = parse_global_uuid(global_id, "Entity")
    return None if parsed is None else str(parsed)


@strawberry.type
class TraversalQueries:
    @strawberry.field(
        description="Entities within `depth` (1 to 3) relationships of an entity, at most "
        "`limit` of them (1 to the configured maximum, 500 by default) and the relationships "
        "among them, following only `types` when given. Null unless the caller is a member of "
        "the entity's domain."
    )
    async def neighborhood(
        self,
        info: Info,
        entity_id: strawberry.ID,
        depth: int = 1,
        limit: int = 50,
        types: list[str] | None = None,
    ) -> Subgraph | None:
        follow = traversals.neighborhood_request(info.context, depth, limit, types)
        found = await traversals.neighborhood(
            info.context, _entity_id(entity_id), depth, limit, follow
        )
        if found is None:
            return None
        return Subgraph(
            nodes=[Entity.from_node(node) for node in found.nodes],
            edges=[Relationship.from_node(edge) for edge in found.edges],
            truncated=found.truncated,
        )

    @strawberry.field(
        description="A shortest path of relationships, either way, between two entities of one "
        "domain, at most `maxDepth` (1 to 6) long; null when there is none, or when the caller "
        "may not read either entity."
    )
    async def path(
        self,
        info: Info,
        from_entity_id: strawberry.ID,
        to_entity_id: strawberry.ID,
        max_depth: int = 4,
    ) -> Path | None:
        traversals.check_path_depth(max_depth)
        found = await traversals.path(
            info.context, _entity_id(from_entity_id), _entity_id(to_entity_id), max_depth
        )
        if found is None:
            return None
        return Path(
            nodes=[Entity.from_node(node) for node in found.nodes],
            edges=[Relationship.from_node(edge) for edge in found.edges],
            length=len(found.edges),
        )
