"""A stand-in for the embedding model (an external component, not one of our stores)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


class HashEmbedder:
    """Unit vectors from a hash of the text: instant, so a test about the pipeline's stores is
    not a test of MiniLM's speed. Text containing ``poison`` gets a 3-d vector, which a Weaviate
    shard already holding 384-d vectors refuses: a batch that fails on every attempt."""

    name = "hash"
    dimensions = 384

    def __init__(self, poison: str | None = None) -> None:
        self._poison = poison

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        if self._poison is not None and self._poison in text:
            return [1.0, 0.0, 0.0]
        digest = hashlib.sha256(text.encode()).digest()
        raw = [b - 127.5 for b in digest * 12]
        norm = sum(x * x for x in raw) ** 0.5
        return [x / norm for x in raw]
