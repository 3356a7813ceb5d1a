"""The extractors' shared contract: input and result types, the protocol and the error."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from heysh.errors import HeyshError

ENTITY_TYPES: tuple[str, ...] = ("PERSON", "ORGANIZATION", "LOCATION", "EVENT", "CONCEPT")
"""The closed set of entity types; anything else is mapped to ``CONCEPT``."""

DEFAULT_RELATION_TYPE = "RELATED_TO"
"""Undirected co-occurrence relation (the heuristic extractor's only relation type)."""


@dataclass(frozen=True)
class ChunkInput:
    chunk_id: str
    text: str


@dataclass(frozen=True)
class ExtractedEntity:
    name: str
    type: str  # one of ENTITY_TYPES
    description: str | None = None


@dataclass(frozen=True)
class ExtractedRelation:
    source: str  # an entity name from the same chunk's entities
    target: str
    type: str


@dataclass(frozen=True)
class ChunkExtraction:
    chunk_id: str
    entities: list[ExtractedEntity]
    relations: list[ExtractedRelation]

    def to_json(self) -> dict[str, Any]:
        """The form the pipeline stores between its extract and resolve steps."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkExtraction:
        """The inverse of :meth:`to_json`."""
        return cls(
            chunk_id=data["chunk_id"],
            entities=[ExtractedEntity(**e) for e in data["entities"]],
            relations=[ExtractedRelation(**r) for r in data["relations"]],
        )


class Extractor(Protocol):
    name: str

    async def extract(self, chunks: Sequence[ChunkInput]) -> list[ChunkExtraction]:
        """One result per input chunk, in the same order."""
        ...


class ExtractionError(HeyshError):
    """Extraction failed; ``retryable`` says whether trying the same input again may succeed."""

    code = "EXTRACTION_FAILED"

    def __init__(
        self, message: str, *, retryable: bool = False, chunk_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.chunk_id = chunk_id
