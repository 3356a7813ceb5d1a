"""What withdrawing a document would change across stores; reads only.

Shared by the DeleteDocument workflow and the api's dry run, so both report the same figures.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from heysh.stores.graph import GraphStore
from heysh.stores.journal import JournalStore, RelationWeight
from heysh.stores.vectors import VectorStore

NAMES = 100  # entity names a dry run lists
_RELATION_NAMESPACE = uuid.UUID("5d0c4d1e-4f7b-4c8e-9a51-2f5e0b3c9a10")


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


def relation_params(r: RelationWeight) -> dict[str, Any]:
    source, target = str(r.source_id), str(r.target_id)
    return {
        "id": relation_id(source, target, r.type),
        "source": source,
        "target": target,
        "type": r.type,
        "weight": r.weight,
    }


async def document_impact(
    journal: JournalStore,
    graph: GraphStore,
    vectors: VectorStore,
    domain_id: str,
    document_id: str,
) -> DeleteImpact:
    """A fixed number of bounded queries, whatever the document's size."""
    impact = await journal.withdrawal_impact(UUID(document_id), NAMES)
    return DeleteImpact(
        chunks=await graph.count_document_chunks(document_id),
        vectors=await vectors.count_document(domain_id, document_id),
        entities_deleted=impact.entities_deleted,
        relationships_deleted=impact.relationships_deleted,
        relationships_weakened=impact.relationships_weakened,
        entity_names=impact.entity_names,
    )
