"""What withdrawing a document would change across stores; reads only.

Shared by the DeleteDocument workflow and the api's dry run, so both report the same figures.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from heysh.stores.documents import DocumentStore, RelationRow
from heysh.stores.graph import GraphStore
from heysh.stores.vectors import VectorStore

PAGE = 500
_RELATION_NAMESPACE = uuid.UUID("5d0c4d1e-4f7b-4c8e-9a51-2f5e0b3c9a10")
_T = TypeVar("_T")


@dataclass
class DeleteImpact:
    chunks: int
    vectors: int
    entities_deleted: int
    relationships_deleted: int
    relationships_weakened: int
    entity_names: list[str] = field(default_factory=list)


def relation_id(source_id: str, target_id: str, relation_type: str) -> str:
    return str(uuid.uuid5(_RELATION_NAMESPACE, f"{source_id}|{relation_type}|{target_id}"))


def relation_params(r: RelationRow) -> dict[str, Any]:
    source, target = str(r.source_id), str(r.target_id)
    return {
        "id": relation_id(source, target, r.type),
        "source": source,
        "target": target,
        "type": r.type,
        "evidence": [str(c) for c in r.evidence],
    }


async def pages(fetch: Callable[[int], Awaitable[Sequence[_T]]]) -> Any:
    """Yield successive non-empty pages from an offset-based fetch."""
    offset = 0
    while True:
        page = await fetch(offset)
        if not page:
            return
        yield page
        offset += len(page)


async def document_impact(
    documents: DocumentStore,
    graph: GraphStore,
    vectors: VectorStore,
    domain_id: str,
    document_id: str,
) -> DeleteImpact:
    doc = UUID(document_id)
    deleted = weakened = 0
    async for relations in pages(lambda offset: documents.relation_rows(doc, offset, PAGE)):
        d, w = await graph.relation_impact([relation_params(r) for r in relations])
        deleted, weakened = deleted + d, weakened + w
    entity_ids: list[str] = []
    async for entities in pages(lambda offset: documents.entity_rows(doc, offset, PAGE)):
        entity_ids.extend(str(e.entity_id) for e in entities)
    doomed = await graph.entities_only_in_document(document_id, entity_ids)
    return DeleteImpact(
        chunks=await graph.count_document_chunks(document_id),
        vectors=await vectors.count_document(domain_id, document_id),
        entities_deleted=len(doomed),
        relationships_deleted=deleted,
        relationships_weakened=weakened,
        entity_names=[e.name for e in doomed[:100]],
    )
