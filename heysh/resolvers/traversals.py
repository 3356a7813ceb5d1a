"""Walking the graph from an entity: its neighbourhood, and the shortest path to another.

The start (and end) entities go through the entity DataLoader before any traversal runs: an
entity of a domain the caller is not a member of answers exactly like an unknown id (None).
Entities of a domain only connect to entities of the same domain, and every statement of a
traversal carries that domain, so what a walk reaches is readable by whoever may read its start.
"""

from __future__ import annotations

from collections.abc import Sequence

from heysh.context import Context
from heysh.errors import InvalidInputError
from heysh.resolvers.text import refused_character
from heysh.stores.graph_values import GraphNeighborhood, GraphPath

MAX_NEIGHBORHOOD_DEPTH = 3
MAX_PATH_DEPTH = 6  # the literal bound of cypher.SHORTEST_PATH
# A neighbourhood returns at most this many edges per entity it may return (its `limit`).
EDGES_PER_NODE = 4
# Relationship types are short labels (WORKED_AT); a filter names a few of them.
MAX_TYPES = 20
MAX_TYPE_LENGTH = 100


def neighborhood_request(
    ctx: Context, depth: int, limit: int, types: Sequence[str] | None
) -> list[str] | None:
    """The relationship types to follow (None: all), once ``depth`` and ``limit`` are checked;
    InvalidInputError for anything out of range, whatever the entity."""
    if not 1 <= depth <= MAX_NEIGHBORHOOD_DEPTH:
        raise InvalidInputError(f"depth must be between 1 and {MAX_NEIGHBORHOOD_DEPTH}")
    max_nodes = ctx.services.settings.max_subgraph_nodes
    if not 1 <= limit <= max_nodes:
        raise InvalidInputError(f"limit must be between 1 and {max_nodes}")
    if types is None:
        return None
    if len(types) > MAX_TYPES:
        raise InvalidInputError(f"types may name at most {MAX_TYPES} relationship types")
    for type_ in types:
        refused = refused_character(type_)
        if refused:
            raise InvalidInputError(f"types {refused}")
        if len(type_) > MAX_TYPE_LENGTH:
            raise InvalidInputError(f"a type is at most {MAX_TYPE_LENGTH} characters")
    return sorted(set(types))


def check_path_depth(max_depth: int) -> None:
    if not 1 <= max_depth <= MAX_PATH_DEPTH:
        raise InvalidInputError(f"maxDepth must be between 1 and {MAX_PATH_DEPTH}")


async def neighborhood(
    ctx: Context, entity_id: str | None, depth: int, limit: int, types: list[str] | None
) -> GraphNeighborhood | None:
    """The neighbourhood of a visible entity (``entity_id`` a UUID string, or None for an id that
    cannot be one); None when the entity is not visible to the caller."""
    start = await ctx.loaders.entity.load(entity_id) if entity_id is not None else None
    if start is None:
        return None
    found = await ctx.services.graph.neighborhood(
        start, depth=depth, limit=limit, max_edges=EDGES_PER_NODE * limit, types=types
    )
    _prime(ctx, found)
    return found


async def path(
    ctx: Context, from_id: str | None, to_id: str | None, max_depth: int
) -> GraphPath | None:
    """A shortest path between two visible entities of one domain; None when either is not
    visible, they are in different domains, or no path is at most ``max_depth`` edges long."""
    if from_id is None or to_id is None:
        return None
    start, end = await ctx.loaders.entity.load_many([from_id, to_id])
    if start is None or end is None or start.domain_id != end.domain_id:
        return None
    if start.id == end.id:
        return GraphPath([start], [])
    found = await ctx.services.graph.shortest_path(start.domain_id, start.id, end.id, max_depth)
    if found is not None:
        _prime(ctx, found)
    return found


def _prime(ctx: Context, found: GraphNeighborhood | GraphPath) -> None:
    # Nested fields (an edge's source, an entity's domain) then read these instead of refetching.
    for node in found.nodes:
        ctx.loaders.entity.prime(node.id, node)
    for edge in found.edges:
        ctx.loaders.relationship.prime(edge.id, edge)
