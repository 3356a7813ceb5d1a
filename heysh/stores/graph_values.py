"""The values the graph store reads: nodes, keyset positions of relation pages, results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EntityRelation = Literal["domain", "document", "chunk", "neighbors"]
ChunkRelation = Literal["document", "mentions"]
Direction = Literal["OUT", "IN", "BOTH"]


@dataclass(frozen=True)
class EntityNode:
    id: str
    domain_id: str
    name: str
    type: str
    description: str | None
    mention_count: int  # chunks that mention it, across the domain's documents


@dataclass(frozen=True)
class ChunkNode:
    id: str
    domain_id: str
    document_id: str
    index: int
    start: int  # character offsets of the chunk in its document's text
    end: int
    text: str


@dataclass(frozen=True)
class RelationshipNode:
    id: str
    domain_id: str
    type: str
    source_id: str
    target_id: str
    weight: int  # chunks, across the domain's documents, that state it


# Keyset positions of the relation pages (see cypher.py for each order).
@dataclass(frozen=True)
class NameKey:
    """Entities by name, then id."""

    name: str
    id: str


@dataclass(frozen=True)
class ChunkKey:
    """Chunks by document, then position in it."""

    document_id: str
    index: int


@dataclass(frozen=True)
class WeightKey:
    """Relationships heaviest first, then by id."""

    weight: int
    id: str


@dataclass(frozen=True)
class PageSlice:
    """One parent's page in a batched read: the parent's id, its domain, the keyset position."""

    parent: str
    domain: str
    after: NameKey | ChunkKey | WeightKey | None


@dataclass(frozen=True)
class GraphStats:
    chunks: int
    entities: int
    relationships: int


@dataclass(frozen=True)
class GraphCounts:
    documents: int
    chunks: int
    entities: int
    mentions: int
    relationships: int
    total_weight: int


# --- traversal results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphNeighborhood:
    nodes: list[EntityNode]  # the start entity, then each breadth-first level in its order
    edges: list[RelationshipNode]
    truncated: bool  # entities or edges were left out to stay within the limits


@dataclass(frozen=True)
class GraphPath:
    nodes: list[EntityNode]  # from the first entity to the last
    edges: list[RelationshipNode]  # edges[i] joins nodes[i] and nodes[i + 1], either way


# --- search results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchChunk:
    chunk: ChunkNode
    entities: list[EntityNode]  # those it mentions, by name, up to the caller's cap


@dataclass(frozen=True)
class LinkedEntity:
    node: EntityNode
    degree: int  # RELATED edges, either way, within the domain
    neighbours: frozenset[str]  # ids of its neighbours that the same candidates mention


@dataclass(frozen=True)
class CandidateChunk:
    chunk: ChunkNode
    entities: list[LinkedEntity]  # those it mentions, by name, up to the caller's cap


@dataclass(frozen=True)
class GraphCandidates:
    chunks: dict[str, CandidateChunk]  # by chunk id; chunks the graph does not hold are absent
