"""Split a document into token-bounded, overlapping chunks that end at natural boundaries.

Chunking works on the character spans of the embedder's own tokens, so ``max_tokens`` means what
the model will see, and each chunk is an exact slice of the document (``document[start:end]``),
which keeps highlights and citations exact. The document is tokenized once, in sections of a few
hundred KB cut at paragraph or word breaks, so memory stays bounded however large the document is.
"""

from __future__ import annotations

import functools
import uuid
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

if TYPE_CHECKING:  # the api imports this module too; only the worker needs tiktoken loaded
    import tiktoken

_CHUNK_NAMESPACE = uuid.UUID("7fb1b6da-e42b-404d-ae93-4a7c7b288791")
_SECTION_CHARS = 400_000  # characters iter_chunks asks the counter to tokenize at a time
_SLICE_CHARS = 100_000  # characters a counter encodes as one sequence
_SLICES_PER_BATCH = 4  # slices encoded together (in parallel): one section
_CHARS_PER_TOKEN_CAP = 20  # default character cap per chunk, per allowed token
# … ‼ ⁇ ⁈ ⁉ and the CJK full stop, exclamation and question marks (no space follows those).
_UNSPACED_SENTENCE_ENDS = frozenset("\u3002\uff01\uff1f")
_SENTENCE_ENDS = frozenset(".!?\u2026\u203c\u2047\u2048\u2049") | _UNSPACED_SENTENCE_ENDS
# Closing quotes and brackets that may follow a sentence's end (ASCII, guillemet, curly, CJK).
_CLOSERS = frozenset("\"')]}\u00bb\u201d\u2019\u300d\u300f")

# Boundary scores: higher is a better place to end a chunk.
_PARAGRAPH, _SENTENCE, _LINE, _WORD, _INSIDE_WORD = 4, 3, 2, 1, 0


@dataclass(frozen=True)
class TextChunk:
    """One chunk: ``text == document[start:end]``; ``token_count`` counts the counter's tokens."""

    index: int
    text: str
    start: int
    end: int
    token_count: int


class TokenCounter(Protocol):
    def offsets(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` character span of each token of ``text``, in order."""
        ...


def chunk_id(document_id: str, index: int) -> str:
    """A UUID that is the same for the same document and chunk index in every run."""
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{document_id}#{index}"))


def iter_chunks(
    text: str,
    counter: TokenCounter,
    *,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    max_chars: int | None = None,
) -> Iterator[TextChunk]:
    """Cut ``text`` into chunks of at most ``max_tokens`` tokens, consecutive ones sharing about
    ``overlap_tokens`` tokens.

    A chunk ends at the best boundary in the last quarter of its window (paragraph, then sentence,
    then line, then word), else at the window's end. Chunks start and end on tokens, so they carry
    no leading or trailing whitespace. ``max_chars`` (default ``20 * max_tokens``) bounds a chunk's
    length in characters, for text where few tokens cover much (a megabyte with no spaces is one
    ``[UNK]`` token to WordPiece); a token longer than that is cut into pieces counted as one
    token each. Text without tokens (empty, whitespace) gives no chunks.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError(
            f"overlap_tokens must be between 0 and half of max_tokens ({max_tokens // 2}), "
            f"not {overlap_tokens}"
        )
    cap = max_chars if max_chars is not None else _CHARS_PER_TOKEN_CAP * max_tokens
    if cap < 1:
        raise ValueError(f"max_chars must be at least 1, not {cap}")
    if not text or text.isspace():
        return

    units = _Units(text, counter, cap)
    index = 0
    i = 0  # first unit of the current window
    while True:
        # Enough units ahead that a full window plus the unit after it are known.
        units.load_beyond(i + max_tokens)
        starts, ends, n = units.starts, units.ends, len(units.starts)
        if i >= n:
            break
        limit = min(i + max_tokens, n)
        # Units i..k-1 fit under the character cap (always at least one).
        k = bisect_right(ends, starts[i] + cap, i + 1, limit)
        end = k if k >= n else _best_end(text, starts, ends, i, k)
        yield TextChunk(
            index=index,
            text=text[starts[i] : ends[end - 1]],
            start=starts[i],
            end=ends[end - 1],
            token_count=end - i,
        )
        index += 1
        if end >= n:
            break
        # Overlap, but never more than half the chunk: every step moves on by half a chunk or more.
        step_back = min(overlap_tokens, (end - i) // 2)
        i = _word_start(starts, ends, end - step_back, end)
        i = units.compact(i)


class _Units:
    """Token spans of the document, loaded section by section as the window moves on."""

    def __init__(self, text: str, counter: TokenCounter, cap: int) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self._counter = counter
        self._text = text
        self._cap = cap
        self._sections = sections(text, _SECTION_CHARS)
        self._exhausted = False

    def load_beyond(self, index: int) -> None:
        """Load sections until unit ``index`` exists or the document is used up."""
        while not self._exhausted and len(self.starts) <= index:
            section = next(self._sections, None)
            if section is None:
                self._exhausted = True
                return
            self._add(*section)

    def compact(self, i: int) -> int:
        """Forget units before ``i`` once there are many; return ``i``'s new index."""
        if i < 65_536:
            return i
        del self.starts[:i]
        del self.ends[:i]
        return 0

    def _add(self, base: int, stop: int) -> None:
        spans = self._counter.offsets(self._text[base:stop])
        if not spans:
            return
        flat = np.fromiter(chain.from_iterable(spans), dtype=np.int64, count=2 * len(spans))
        flat += base
        starts_array = flat[0::2]
        # Ends never go back, even where tokens share a span (lowercasing "İ" gives two chars).
        ends_array = np.maximum.accumulate(flat[1::2])
        starts, ends = starts_array.tolist(), ends_array.tolist()
        if int((ends_array - starts_array).max()) > self._cap:
            starts, ends = _split_long(starts, ends, self._cap)
        self.starts.extend(starts)
        self.ends.extend(ends)


def _split_long(starts: list[int], ends: list[int], cap: int) -> tuple[list[int], list[int]]:
    new_starts: list[int] = []
    new_ends: list[int] = []
    for s, e in zip(starts, ends, strict=True):
        if e - s <= cap:
            new_starts.append(s)
            new_ends.append(e)
            continue
        for piece in range(s, e, cap):
            new_starts.append(piece)
            new_ends.append(min(piece + cap, e))
    return new_starts, new_ends


def _best_end(text: str, starts: list[int], ends: list[int], i: int, k: int) -> int:
    """The end (exclusive unit index) in the last quarter of window ``[i, k)`` at the best
    boundary, preferring the later one on ties. Requires unit ``k`` to exist."""
    lowest = k - max(1, (k - i) // 4) + 1
    best, best_score = k, -1
    for e in range(k, lowest - 1, -1):
        score = _boundary_score(text, starts, ends, e)
        if score > best_score:
            best, best_score = e, score
            if score == _PARAGRAPH:
                break
    return best


def _boundary_score(text: str, starts: list[int], ends: list[int], e: int) -> int:
    """How good a place the break between unit ``e - 1`` and unit ``e`` is."""
    before, after = ends[e - 1], starts[e]
    spaced = after > before
    newlines = text.count("\n", before, after) if spaced else 0
    if newlines >= 2:
        return _PARAGRAPH
    last = text[before - 1] if before > 0 else ""
    if last in _CLOSERS and before >= 2:  # 'He said "Stop." Then' ends after the quote
        last = text[before - 2]
    if last in _SENTENCE_ENDS and (spaced or last in _UNSPACED_SENTENCE_ENDS):
        return _SENTENCE
    if newlines:
        return _LINE
    return _WORD if spaced else _INSIDE_WORD


def _word_start(starts: list[int], ends: list[int], lo: int, hi: int) -> int:
    """The first unit in ``[lo, hi)`` that begins a word (follows a space), else ``lo``."""
    for j in range(lo, hi):
        if j == 0 or starts[j] > ends[j - 1]:
            return j
    return lo


def sections(text: str, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pieces of ``text`` of at most ``size`` characters, cut where tokenizing
    the pieces separately gives the same tokens as the whole: after a paragraph break, a line
    break or a space in the piece's second half; only a piece without any is cut hard."""
    length = len(text)
    start = 0
    while start < length:
        stop = start + size
        if stop >= length:
            yield start, length
            return
        half = start + size // 2
        for mark in ("\n\n", "\n", " ", "\t"):
            found = text.rfind(mark, half, stop)
            if found != -1:
                stop = found + len(mark)
                break
        yield start, stop
        start = stop


class WordPieceCounter:
    """Token spans from a Hugging Face ``tokenizer.json`` (MiniLM's WordPiece), without the
    special tokens, truncation or padding that embedding adds."""

    def __init__(self, tokenizer_file: Path, *, slice_chars: int = _SLICE_CHARS) -> None:
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._slice_chars = slice_chars

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> WordPieceCounter:
        return cls(model_dir / "tokenizer.json")

    def offsets(self, text: str) -> list[tuple[int, int]]:
        # Large texts go through in slices (a few at a time, encoded in parallel), so the
        # tokenizer's per-token bookkeeping never holds more than a few slices.
        spans: list[tuple[int, int]] = []
        batch: list[tuple[int, int]] = []
        for piece in sections(text, self._slice_chars):
            batch.append(piece)
            if len(batch) == _SLICES_PER_BATCH:
                self._encode(text, batch, spans)
                batch = []
        if batch:
            self._encode(text, batch, spans)
        return spans

    def count(self, text: str) -> int:
        return len(self.offsets(text))

    def _encode(
        self, text: str, pieces: list[tuple[int, int]], into: list[tuple[int, int]]
    ) -> None:
        encodings = self._tokenizer.encode_batch(
            [text[a:b] for a, b in pieces], add_special_tokens=False
        )
        for (base, _), encoding in zip(pieces, encodings, strict=True):
            if base:
                into.extend([(s + base, e + base) for s, e in encoding.offsets])
            else:
                into.extend(encoding.offsets)


class TiktokenCounter:
    """Token spans from a tiktoken BPE encoding: what OpenAI's embedding models count.

    BPE tokens carry their leading space (``" world"``) and may split a character into bytes, so
    each token's character span is trimmed of whitespace (chunks then start and end on text, and
    boundaries see the gaps), a token of whitespace only becomes an empty span where it starts
    (still counted), and a token that starts or ends inside a character covers all of it.
    """

    def __init__(self, encoding: tiktoken.Encoding, *, slice_chars: int = _SLICE_CHARS) -> None:
        self._encoding = encoding
        self._slice_chars = slice_chars
        lengths = np.zeros(encoding.max_token_value + 1, dtype=np.int64)
        for token in range(encoding.max_token_value + 1):
            try:
                lengths[token] = len(encoding.decode_single_token_bytes(token))
            except KeyError:  # ids between the ordinary and the special tokens
                continue
        self._token_bytes = lengths

    def offsets(self, text: str) -> list[tuple[int, int]]:
        # Slices cut at whitespace bound the arrays below; a cut may change a token or two of
        # the count against encoding the whole text, never a span's exactness.
        spans: list[tuple[int, int]] = []
        for base, stop in sections(text, self._slice_chars):
            starts, ends = self._spans(text[base:stop])
            spans.extend(zip((starts + base).tolist(), (ends + base).tolist(), strict=True))
        return spans

    def count(self, text: str) -> int:
        return len(self.offsets(text))

    def _spans(self, text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        tokens = np.asarray(self._encoding.encode_ordinary(text), dtype=np.int64)
        data = np.frombuffer(text.encode("utf-8", errors="surrogatepass"), dtype=np.uint8)
        byte_ends = np.cumsum(self._token_bytes[tokens])
        if (byte_ends[-1] if len(byte_ends) else 0) != len(data):
            raise ValueError(f"{self._encoding.name} tokens do not cover the text's bytes")
        byte_starts = byte_ends - self._token_bytes[tokens]
        # chars_before[b]: characters that start before byte b (UTF-8 continuation bytes start none)
        chars_before = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum((data & 0xC0) != 0x80, out=chars_before[1:])
        starts = chars_before[byte_starts + 1] - 1  # the character holding the first byte
        ends = chars_before[byte_ends]  # up to the end of the character holding the last byte
        points = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        solid = ~np.isin(points, _whitespace_code_points())
        position = np.arange(len(points) + 1, dtype=np.int64)
        # next_solid[i]: the first non-space character at or after i (len(text) when none)
        marks = np.where(np.append(solid, True), position, len(points))
        next_solid = np.minimum.accumulate(marks[::-1])[::-1]
        # solid_end[i]: one past the last non-space character before i (0 when none)
        solid_end = np.maximum.accumulate(np.where(np.insert(solid, 0, False), position, 0))
        trimmed_starts, trimmed_ends = next_solid[starts], solid_end[ends]
        blank = trimmed_starts >= trimmed_ends
        trimmed_starts[blank] = starts[blank]
        trimmed_ends[blank] = starts[blank]
        return trimmed_starts, trimmed_ends


@functools.cache
def _whitespace_code_points() -> npt.NDArray[np.uint32]:
    """Every code point ``str.isspace`` accepts (about 25), found once."""
    return np.array([c for c in range(0x110000) if chr(c).isspace()], dtype=np.uint32)
