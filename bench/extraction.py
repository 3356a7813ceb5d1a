"""Entity extraction measured against the hand-labelled set in tests/fixtures/extraction/.

    .venv/bin/python bench/extraction.py [--extractor heuristic|llm|both] [--errors]

Each labelled document is cut into chunks as the pipeline cuts them (200 tokens, 40 overlapping;
tokens counted with tiktoken's offline cl100k_base so the bench needs no model file), the chunks
are extracted in one call, and the document's predictions are the set of (name, type) pairs over
its chunks. The gold set is the (name, type) pairs of its labelled mentions.

Matching is type-aware on the normalised name: NFKC, curly apostrophes made straight, case folded,
whitespace collapsed, a leading "the", a trailing possessive and periods removed ("U.S." is "us").
A prediction is a true positive when the same document labels the same normalised name with the
same type; the right name with the wrong type is a false positive of the predicted type and a
false negative of the labelled one. Counts are summed over documents (micro-averaged) and printed
per genre, per type within each genre, and per type over both genres.

``--extractor llm`` runs the LLM extractor through the real ``openai`` SDK against the local
OpenAI-compatible test server (tests/support/openai_server.py). That server only replays scripted
answers: for each chunk it answers with the chunk's gold labels, and some answers are broken on
purpose (malformed JSON first, types in other spellings or unknown, names padded with blanks or
repeated, a reply in a code fence). So its figures measure the plumbing (structured-output parsing,
per-chunk retries, type mapping), not a model; the bench says so when it prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from heysh.pipeline.chunking import TiktokenCounter  # noqa: E402
from heysh.pipeline.extraction import Extractor, HeuristicExtractor, LlmExtractor  # noqa: E402
from heysh.pipeline.extraction.base import (  # noqa: E402
    ENTITY_TYPES,
    ChunkInput,
    ExtractionError,
)
from heysh.pipeline.factory import openai_encoding  # noqa: E402
from tests.support.chunks import chunk_text  # noqa: E402
from tests.support.openai_server import (  # noqa: E402
    OpenAIServer,
    Reply,
    Request,
    chat_handler,
    chat_reply,
    last_user_message,
)

FIXTURES = ROOT / "tests" / "fixtures" / "extraction"
GENRES = ("narrative", "technical")
CHAT = "/v1/chat/completions"
_LABEL = re.compile(r"\[\[([^\[\]|]+)\|(" + "|".join(ENTITY_TYPES) + r")\]\]")
_LEFTOVER = re.compile(r"\[\[[^\]\n]*\|[^\]\n]*\]\]")


@dataclass(frozen=True)
class Mention:
    name: str
    type: str
    start: int  # offsets in the plain text
    end: int


@dataclass(frozen=True)
class Document:
    genre: str
    name: str
    text: str
    mentions: tuple[Mention, ...]

    def gold(self) -> set[tuple[str, str]]:
        return {(normalize(m.name), m.type) for m in self.mentions}


def parse_labelled(source: str) -> tuple[str, list[Mention]]:
    """The plain text of a labelled document and its mentions (``[[name|TYPE]]`` markup)."""
    parts: list[str] = []
    mentions: list[Mention] = []
    size = 0
    last = 0
    for match in _LABEL.finditer(source):
        before = source[last : match.start()]
        parts.append(before)
        size += len(before)
        name, type_ = match.group(1), match.group(2)
        mentions.append(Mention(name, type_, size, size + len(name)))
        parts.append(name)
        size += len(name)
        last = match.end()
    parts.append(source[last:])
    text = "".join(parts)
    leftover = _LEFTOVER.search(text)
    if leftover is not None:  # a typo in a type would otherwise drop a label silently
        raise ValueError(f"malformed label {leftover.group()!r}: expected [[name|TYPE]]")
    return text, mentions


def load_documents(root: Path = FIXTURES) -> list[Document]:
    documents = []
    for genre in GENRES:
        for path in sorted((root / genre).glob("*.md")):
            text, mentions = parse_labelled(path.read_text(encoding="utf-8"))
            documents.append(Document(genre, path.stem, text, tuple(mentions)))
    return documents


def normalize(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).replace("\u2019", "'")
    text = " ".join(text.split()).casefold()
    text = re.sub(r"^the ", "", text)
    text = re.sub(r"'s?$", "", text)
    return text.replace(".", "").strip(" ,;:")


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Outcome:
    """One extractor's results over the set: scores by (genre, type) and what went wrong."""

    scores: dict[tuple[str, str], Score] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # documents whose extraction failed
    misses: dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]] = field(
        default_factory=dict
    )  # document -> (false positives, false negatives)

    def score(self, genre: str | None = None, type_: str | None = None) -> Score:
        total = Score()
        for (g, t), score in self.scores.items():
            if (genre is None or g == genre) and (type_ is None or t == type_):
                total.add(score)
        return total


def chunks_of(document: Document, counter: TiktokenCounter) -> list[tuple[ChunkInput, int, int]]:
    return [
        (ChunkInput(f"{document.name}#{c.index}", c.text), c.start, c.end)
        for c in chunk_text(document.text, counter, max_tokens=200, overlap_tokens=40)
    ]


async def evaluate(
    extractor: Extractor, documents: Sequence[Document], counter: TiktokenCounter
) -> Outcome:
    outcome = Outcome()
    for document in documents:
        chunks = [chunk for chunk, _, _ in chunks_of(document, counter)]
        predicted: set[tuple[str, str]] = set()
        try:
            for result in await extractor.extract(chunks):
                predicted.update((normalize(e.name), e.type) for e in result.entities)
        except ExtractionError as exc:
            outcome.errors.append(f"{document.genre}/{document.name}: {exc}")
        gold = document.gold()
        outcome.misses[f"{document.genre}/{document.name}"] = (predicted - gold, gold - predicted)
        for type_ in ENTITY_TYPES:
            mine = {p for p in predicted if p[1] == type_}
            theirs = {g for g in gold if g[1] == type_}
            score = outcome.scores.setdefault((document.genre, type_), Score())
            score.add(Score(len(mine & theirs), len(mine - theirs), len(theirs - mine)))
    return outcome


def report(title: str, outcome: Outcome, documents: Sequence[Document], errors: bool) -> None:
    print(f"\n{title}")
    header = f"  {'':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'tp':>6}{'fp':>5}{'fn':>5}"
    print(header)

    def line(label: str, score: Score) -> None:
        print(
            f"  {label:<14}{score.precision:>10.2f}{score.recall:>8.2f}{score.f1:>7.2f}"
            f"{score.tp:>6}{score.fp:>5}{score.fn:>5}"
        )

    for genre in GENRES:
        line(genre, outcome.score(genre))
        for type_ in ENTITY_TYPES:
            line(f"  {type_.lower()}", outcome.score(genre, type_))
    line("all", outcome.score())
    for type_ in ENTITY_TYPES:
        line(f"  {type_.lower()}", outcome.score(None, type_))
    for error in outcome.errors:
        print(f"  FAILED {error}")
    if errors:
        for name, (fps, fns) in outcome.misses.items():
            print(f"  {name}")
            print(f"    false positives: {sorted(fps)}")
            print(f"    false negatives: {sorted(fns)}")


# --- the LLM extractor's plumbing, against scripted answers -------------------------------------


class ScriptedModel:
    """Answers each chunk with its gold labels; some answers are broken in deterministic ways."""

    # Spellings a careless model might use for each type; the extractor must map them back.
    ODD_TYPES = {
        "PERSON": " person ",
        "ORGANIZATION": "Organization",
        "LOCATION": "location",
        "EVENT": "event",
        "CONCEPT": "PRODUCT",  # no such type: maps to CONCEPT
    }

    def __init__(self, documents: Sequence[Document], counter: TiktokenCounter) -> None:
        self.answers: dict[str, tuple[int, list[Mention]]] = {}
        number = 0
        for document in documents:
            for chunk, start, end in chunks_of(document, counter):
                inside = [m for m in document.mentions if start <= m.start and m.end <= end]
                self.answers[chunk.text] = (number, inside)
                number += 1
        self.attempts: Counter[str] = Counter()
        self.broken = 0

    def __call__(self, request: Request) -> str | Reply:
        text = last_user_message(request)
        number, mentions = self.answers[text]
        self.attempts[text] += 1
        if number % 5 == 1 and self.attempts[text] == 1:
            self.broken += 1
            return '{"entities": [{"name": "' + text[:20]  # cut off mid-string: not JSON
        if number % 11 == 3 and self.attempts[text] == 1:
            self.broken += 1
            return json.dumps({"entities": [{"name": "x"}], "relations": []})  # no type
        entities: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for mention in mentions:
            if (mention.name, mention.type) in seen:
                entities.append({"name": f"  {mention.name} ", "type": mention.type})  # repeat
                continue
            seen.add((mention.name, mention.type))
            type_ = self.ODD_TYPES[mention.type] if number % 3 == 0 else mention.type
            entities.append({"name": mention.name, "type": type_, "description": None})
        body = json.dumps({"entities": entities, "relations": []})
        if number % 7 == 2:
            return chat_reply("```json\n" + body + "\n```")
        return body


async def evaluate_llm(
    documents: Sequence[Document], counter: TiktokenCounter
) -> tuple[Outcome, ScriptedModel, int]:
    model = ScriptedModel(documents, counter)
    with OpenAIServer() as server:
        server.route("POST", CHAT, chat_handler(model))
        async with openai.AsyncOpenAI(
            api_key="bench", base_url=server.base_url, max_retries=0
        ) as client:
            outcome = await evaluate(LlmExtractor(client, "scripted"), documents, counter)
        requests = len(server.requests_to(CHAT))
    return outcome, model, requests


def describe_set(documents: Iterable[Document]) -> str:
    by_genre: Counter[str] = Counter()
    unique: Counter[str] = Counter()
    for document in documents:
        by_genre[document.genre] += len(document.mentions)
        unique[document.genre] += len(document.gold())
    return ", ".join(
        f"{genre}: {by_genre[genre]} mentions ({unique[genre]} distinct per document)"
        for genre in GENRES
    )


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extractor", choices=("heuristic", "llm", "both"), default="both")
    parser.add_argument("--errors", action="store_true", help="list misses per document")
    args = parser.parse_args(argv)

    documents = load_documents()
    counter = TiktokenCounter(openai_encoding("text-embedding-3-small"))
    print(f"labelled set: {len(documents)} documents; {describe_set(documents)}")
    if args.extractor in ("heuristic", "both"):
        outcome = await evaluate(HeuristicExtractor(), documents, counter)
        report("heuristic extractor (offline)", outcome, documents, args.errors)
    if args.extractor in ("llm", "both"):
        outcome, model, requests = await evaluate_llm(documents, counter)
        report(
            "LLM extractor against the local test server: scripted answers, so this measures "
            "the plumbing (structured-output parsing, per-chunk retries, type mapping), not a "
            "model",
            outcome,
            documents,
            args.errors,
        )
        print(
            f"  {len(model.answers)} chunks, {requests} requests, "
            f"{model.broken} malformed first answers"
        )


if __name__ == "__main__":
    asyncio.run(main())
