from __future__ import annotations

import random
import re
import time
import uuid
from itertools import pairwise
from pathlib import Path

import pytest

from heysh.local.install import ensure_minilm
from heysh.pipeline import chunking
from heysh.pipeline.chunking import TextChunk, WordPieceCounter, chunk_id
from tests.support.chunks import chunk_text

_WORD = re.compile(r"\w+|[^\w\s]")


class RegexCounter:
    """One token per word or punctuation mark: fast and easy to reason about."""

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]


class NoTokens:
    def offsets(self, text: str) -> list[tuple[int, int]]:
        return []


@pytest.fixture(scope="session")
def wordpiece() -> WordPieceCounter:
    return WordPieceCounter.from_model_dir(ensure_minilm())


_VOCABULARY = [
    "graph", "database", "knowledge", "retrieval", "temporal", "workflow", "entity",
    "relationship", "vector", "search", "embedding", "tokenizer", "paragraph", "sentence",
    "unaffable", "extraordinarily", "café", "naïve", "Curie's", "1903", "中文", "🚀", "Ünïcödé",
    "İstanbul",
]  # fmt: skip


def make_document(chars: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    paragraphs: list[str] = []
    size = 0
    while size < chars:
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = [rng.choice(_VOCABULARY) for _ in range(rng.randint(5, 30))]
            sentences.append(" ".join(words).capitalize() + rng.choice(".?!"))
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:chars]


def assert_well_formed(document: str, chunks: list[TextChunk], max_tokens: int) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert document[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert 1 <= chunk.token_count <= max_tokens
    for before, after in pairwise(chunks):
        assert before.start < after.start  # progress
        assert after.start <= before.end or document[before.end : after.start].isspace()


def test_chunks_are_exact_slices_and_never_exceed_max_tokens(wordpiece: WordPieceCounter) -> None:
    document = make_document(60_000)
    chunks = chunk_text(document, wordpiece, max_tokens=200, overlap_tokens=40)
    assert len(chunks) > 50
    assert_well_formed(document, chunks, 200)
    for chunk in chunks:
        # What the embedder will see when it tokenizes the chunk on its own.
        assert wordpiece.count(chunk.text) <= 200
    assert chunks[0].start == 0
    assert chunks[-1].end == len(document.rstrip())


def test_unicode_offsets_round_trip(wordpiece: WordPieceCounter) -> None:
    document = "Ünïcödé — “quotes”, emoji 🚀🚀 and 中文字符。 İstanbul ﬁne e\u0301te. " * 200
    chunks = chunk_text(document, wordpiece, max_tokens=50, overlap_tokens=10)
    assert_well_formed(document, chunks, 50)
    assert "🚀" in chunks[0].text


def test_consecutive_chunks_share_about_overlap_tokens() -> None:
    counter = RegexCounter()
    document = make_document(40_000)
    spans = counter.offsets(document)
    chunks = chunk_text(document, counter, max_tokens=100, overlap_tokens=20)
    for before, after in pairwise(chunks):
        shared = [s for s in spans if after.start <= s[0] and s[1] <= before.end]
        assert 1 <= len(shared) <= 20
        assert before.text.endswith(document[after.start : before.end])


def test_no_overlap_means_chunks_tile_the_document() -> None:
    document = make_document(20_000)
    chunks = chunk_text(document, RegexCounter(), max_tokens=64, overlap_tokens=0)
    for before, after in pairwise(chunks):
        assert before.end <= after.start
        assert document[before.end : after.start].strip() == ""


def test_chunks_end_at_a_sentence_when_one_is_in_the_last_quarter() -> None:
    # Sentences of 10 words + "." = 11 tokens: every window's last quarter (25 tokens) holds one.
    sentence = "alpha beta gamma delta epsilon zeta eta theta iota kappa."
    document = " ".join([sentence] * 100)
    chunks = chunk_text(document, RegexCounter(), max_tokens=100, overlap_tokens=20)
    assert len(chunks) > 5
    assert all(chunk.text.endswith(".") for chunk in chunks)
    assert all(chunk.token_count > 75 for chunk in chunks[:-1])


def test_a_paragraph_break_beats_a_later_sentence_end() -> None:
    first = " ".join(["word"] * 80) + ". Paragraph ends here."  # 84 tokens
    second = "More words. " * 20
    document = f"{first}\n\n{second}"
    chunks = chunk_text(document, RegexCounter(), max_tokens=100, overlap_tokens=0)
    assert chunks[0].text == first


def test_a_sentence_end_followed_by_a_closing_quote_counts() -> None:
    document = " ".join(["word"] * 85) + ' he said "stop." ' + " ".join(["word"] * 50)
    chunks = chunk_text(document, RegexCounter(), max_tokens=100, overlap_tokens=0)
    assert chunks[0].text.endswith('"stop."')


def test_text_without_boundaries_is_cut_at_max_tokens() -> None:
    document = "-" * 1000  # 1000 one-character tokens, no spaces, no sentences
    chunks = chunk_text(document, RegexCounter(), max_tokens=100, overlap_tokens=10)
    assert_well_formed(document, chunks, 100)
    assert [c.token_count for c in chunks[:-1]] == [100] * (len(chunks) - 1)
    assert chunks[-1].end == 1000


@pytest.mark.parametrize("document", ["", " ", "\n\n\t  \n", "\u3000\u2003"])
def test_empty_or_blank_text_gives_no_chunks(document: str) -> None:
    assert chunk_text(document, RegexCounter()) == []


def test_text_the_counter_finds_no_tokens_in_gives_no_chunks() -> None:
    assert chunk_text("\x00\x01 something", NoTokens()) == []


def test_a_huge_run_without_spaces_is_cut_by_characters(wordpiece: WordPieceCounter) -> None:
    # WordPiece makes any word over 100 characters one [UNK] token, so here tokens say little.
    document = "x" * 1_000_000
    chunks = chunk_text(document, wordpiece, max_tokens=200, overlap_tokens=40, max_chars=5000)
    assert_well_formed(document, chunks, 200)
    assert all(len(chunk.text) <= 5000 for chunk in chunks)
    assert chunks[0].start == 0
    assert chunks[-1].end == len(document)
    assert len(chunks) <= 2 * len(document) // 5000  # no crawl of one-character steps


def test_few_tokens_over_many_characters_still_respect_max_chars() -> None:
    document = ("a" + " " * 999) * 50 + "end"
    chunks = chunk_text(document, RegexCounter(), max_tokens=200, overlap_tokens=40, max_chars=3000)
    assert_well_formed(document, chunks, 200)
    assert all(len(chunk.text) <= 3000 for chunk in chunks)


def test_document_tokenized_in_sections_gives_the_same_chunks(
    monkeypatch: pytest.MonkeyPatch, wordpiece: WordPieceCounter
) -> None:
    document = make_document(30_000)
    whole = chunk_text(document, wordpiece)
    monkeypatch.setattr(chunking, "_SECTION_CHARS", 1_500)
    assert chunk_text(document, wordpiece) == whole


def test_wordpiece_counter_slices_give_the_same_offsets_as_one_pass() -> None:
    model_dir: Path = ensure_minilm()
    document = make_document(20_000)
    one_pass = WordPieceCounter.from_model_dir(model_dir)
    sliced = WordPieceCounter(model_dir / "tokenizer.json", slice_chars=1_000)
    assert sliced.offsets(document) == one_pass.offsets(document)
    assert one_pass.count("Neo4j stores graphs.") == 6  # neo ##4 ##j stores graphs .


def test_chunk_ids_are_stable_uuid5_per_document_and_index() -> None:
    first = chunk_id("doc-1", 0)
    assert first == chunk_id("doc-1", 0)
    assert first == "9313e020-0fa3-53ed-868a-f7983c0dc00b"  # the same in every run and process
    assert uuid.UUID(first).version == 5
    assert len({chunk_id("doc-1", 0), chunk_id("doc-1", 1), chunk_id("doc-2", 0)}) == 3


@pytest.mark.parametrize(
    ("max_tokens", "overlap_tokens", "max_chars"),
    [(0, 0, None), (100, -1, None), (100, 51, None), (100, 10, 0)],
)
def test_bad_limits_are_refused(
    max_tokens: int, overlap_tokens: int, max_chars: int | None
) -> None:
    with pytest.raises(ValueError, match="must be"):
        chunk_text(
            "some text",
            RegexCounter(),
            max_tokens=max_tokens,
            overlap_tokens=overlap_tokens,
            max_chars=max_chars,
        )


def test_a_five_megabyte_document_chunks_in_one_pass(wordpiece: WordPieceCounter) -> None:
    document = make_document(5_000_000, seed=11)
    started = time.perf_counter()
    chunks = chunk_text(document, wordpiece, max_tokens=200, overlap_tokens=40)
    elapsed = time.perf_counter() - started
    print(f"\n5 MB document: {len(chunks)} chunks in {elapsed:.2f}s")
    assert_well_formed(document, chunks, 200)
    assert chunks[0].start == 0
    assert chunks[-1].end == len(document.rstrip())
    assert 150 < sum(c.token_count for c in chunks) / len(chunks) <= 200
    ends_at_sentence = sum(c.text[-1] in ".?!" for c in chunks[:-1]) / (len(chunks) - 1)
    assert ends_at_sentence > 0.95
