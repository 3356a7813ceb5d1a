"""The chunker's output as a list, for tests that look at all of a document's chunks at once."""

from __future__ import annotations

from typing import Any

from heysh.pipeline.chunking import TextChunk, TokenCounter, iter_chunks


def chunk_text(text: str, counter: TokenCounter, **options: Any) -> list[TextChunk]:
    return list(iter_chunks(text, counter, **options))
