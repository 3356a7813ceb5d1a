"""Pages of the knowledge graph's relation fields, read through the request's DataLoaders.

Parents reach these functions only as objects the caller was allowed to load, so the pages need
no membership check of their own; each still passes the parent's domain down to the store, which
matches it on every row it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

from heysh.context import Context
from heysh.errors import InvalidInputError
from heysh.loaders import NoFilters, PagedLoader
from heysh.resolvers.pagination import Page, PageRequest, page_of
from heysh.stores.documents import DocumentRow
from heysh.stores.graph_values import (
    ChunkKey,
    ChunkNode,
    Direction,
    EntityNode,
    NameKey,
    PageSlice,
    RelationshipNode,
    WeightKey,
)
from heysh.stores.postgres import PageKey
from heysh.stores.provenance import RelationKey

_Row = TypeVar("_Row")
_Key = TypeVar("_Key", bound=Any)

MAX_FILTER_LENGTH = 200
MAX_RELATIONSHIP_TYPES = 20


async def domain_entities(
    ctx: Context,
    domain_id: str,
    request: PageRequest[NameKey],
    type: str | None,
    name_contains: str | None,
) -> Page[EntityNode]:
    _check_filter("type", type)
    _check_filter("nameContains", name_contains)
    rows = await ctx.loaders.domain_entities.load(
        (PageSlice(domain_id, domain_id, request.after), request.fetch, (type, name_contains))
    )
    return page_of(request, rows)


async def children(
    loader: PagedLoader[PageSlice, NoFilters, _Row],
    parent_id: str,
    domain_id: str,
    request: PageRequest[_Key],
) -> Page[_Row]:
    """A page of one parent's children through the relation's loader (no filters)."""
    slice_ = PageSlice(parent_id, domain_id, request.after)
    return page_of(request, await loader.load((slice_, request.fetch, ())))


async def entity_relationships(
    ctx: Context,
    entity_id: str,
    domain_id: str,
    request: PageRequest[WeightKey],
    direction: Direction,
    types: Sequence[str] | None,
) -> Page[RelationshipNode]:
    if types is not None:
        if len(types) > MAX_RELATIONSHIP_TYPES:
            raise InvalidInputError(f"types takes at most {MAX_RELATIONSHIP_TYPES} types")
        for name in types:
            _check_filter("types", name)
    filters = (direction, tuple(sorted(set(types))) if types is not None else None)
    slice_ = PageSlice(entity_id, domain_id, request.after)
    loader = ctx.loaders.entity_relationships
    return page_of(request, await loader.load((slice_, request.fetch, filters)))


async def relationship_evidence(
    ctx: Context, relationship: RelationshipNode, request: PageRequest[ChunkKey]
) -> Page[ChunkNode]:
    key = RelationKey(
        UUID(relationship.source_id),
        UUID(relationship.target_id),
        relationship.type,
        UUID(relationship.domain_id),
    )
    ids = await ctx.loaders.relationship_evidence.load(((key, request.after), request.fetch, ()))
    # A chunk the journal names but the graph no longer holds (a delete under way) is left out.
    chunks = await ctx.loaders.chunk.load_many([str(i) for i in ids])
    page = page_of(request, ids)
    found = {c.id: c for c in chunks if c is not None}
    return Page(
        [found[str(i)] for i in page.rows if str(i) in found],
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
    )


async def entity_documents(
    ctx: Context, entity_id: str, domain_id: str, request: PageRequest[PageKey]
) -> Page[DocumentRow]:
    key = (UUID(entity_id), UUID(domain_id), request.after)
    rows = await ctx.loaders.entity_documents.load((key, request.fetch, ()))
    for row in rows:
        ctx.loaders.document.prime(row.id, row)
    return page_of(request, rows)


def _check_filter(name: str, value: str | None) -> None:
    if value is not None and not 0 < len(value) <= MAX_FILTER_LENGTH:
        raise InvalidInputError(f"{name} must be 1 to {MAX_FILTER_LENGTH} characters")
