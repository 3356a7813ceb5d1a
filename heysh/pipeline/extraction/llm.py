"""Extraction by any OpenAI-compatible chat completions endpoint, through the SDK's structured
outputs: the request carries the strict JSON schema of :class:`ExtractionReply` and the SDK parses
the reply into it (``client.chat.completions.parse``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from heysh.pipeline.extraction.base import (
    DEFAULT_RELATION_TYPE,
    ENTITY_TYPES,
    ChunkExtraction,
    ChunkInput,
    ExtractedEntity,
    ExtractedRelation,
    ExtractionError,
)
from heysh.telemetry.tracing import store_span

_SYSTEM_PROMPT = f"""\
You extract a knowledge graph from one passage of a document.

Entities: the named things the passage mentions. For each give
- "name": the fullest name used in the passage, exactly as written (no titles such as Dr.);
- "type": one of {", ".join(ENTITY_TYPES)}: PERSON for people, ORGANIZATION for companies,
  institutions, agencies and groups, LOCATION for places, EVENT for named events, CONCEPT for
  anything else worth a node (awards, theories, substances, works, products, fields);
- "description": one short sentence about the entity based only on the passage, or null.
Code identifiers, placeholders in capitals, headings and labels such as "Example:" are no
entities.

Relations: facts the passage states between two of your entities. For each give
- "source" and "target": names exactly as in your entity list;
- "type": a short UPPER_SNAKE_CASE verb phrase, e.g. WORKED_AT, BORN_IN, MARRIED_TO, FOUNDED,
  PART_OF, LOCATED_IN, AWARDED, DISCOVERED; use {DEFAULT_RELATION_TYPE} when nothing fits.

Extract only what the passage supports. Reply with the JSON object only."""

EntityType = Literal["PERSON", "ORGANIZATION", "LOCATION", "EVENT", "CONCEPT"]


class ReplyEntity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    type: EntityType
    description: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _closed_type(cls, value: Any) -> Any:
        # Models write "person" or invent types ("PRODUCT"): the set of types is closed, and
        # CONCEPT is its "anything else". A missing or non-string type stays an error.
        if isinstance(value, str):
            folded = value.strip().upper()
            return folded if folded in ENTITY_TYPES else "CONCEPT"
        return value


class ReplyRelation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    source: str
    target: str
    type: str = DEFAULT_RELATION_TYPE


class ExtractionReply(BaseModel):
    """What the model must answer; its strict JSON schema is sent with every request."""

    model_config = ConfigDict(extra="ignore")
    entities: list[ReplyEntity]
    relations: list[ReplyRelation] = []


EXTRACTION_SCHEMA: dict[str, Any] = ExtractionReply.model_json_schema()
"""The reply's JSON schema as pydantic writes it (the SDK sends its strict form)."""

_MAX_NAME_LENGTH = 200
_RELATION_TYPE_JUNK = re.compile(r"[^0-9A-Z]+")
_CODE_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?```\s*$", re.DOTALL)
_RETRYABLE_STATUS = frozenset({408, 409, 429})


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def _relation_type(raw: str) -> str:
    cleaned = _RELATION_TYPE_JUNK.sub("_", raw.strip().upper()).strip("_")
    return cleaned[:64] or DEFAULT_RELATION_TYPE


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation_summary(error: ValidationError, limit: int = 3) -> str:
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "reply"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _malformed(chunk_id: str, error: ValidationError) -> ExtractionError:
    """A short, retryable error for a reply the SDK could not parse (never the reply itself)."""
    first = error.errors()[0] if error.error_count() else None
    if first is not None and first["type"] == "json_invalid":
        detail = f"the model's reply is not JSON ({first['msg']})"
    else:
        detail = (
            f"the model's reply does not match the extraction schema: {_validation_summary(error)}"
        )
    return ExtractionError(f"chunk {chunk_id}: {_short(detail)}", retryable=True, chunk_id=chunk_id)


def _unfenced(chunk_id: str, error: ValidationError) -> ExtractionReply:
    """Some local models wrap the JSON in a code fence; the SDK then sees no JSON. Parse inside."""
    first = error.errors()[0] if error.error_count() else None
    content = first.get("input") if first is not None else None
    if first is not None and first["type"] == "json_invalid" and isinstance(content, str):
        fenced = _CODE_FENCE.match(content)
        if fenced:
            try:
                return ExtractionReply.model_validate_json(fenced.group(1))
            except ValidationError as inner:
                raise _malformed(chunk_id, inner) from None
    raise _malformed(chunk_id, error) from None


def clean_reply(chunk_id: str, reply: ExtractionReply) -> ChunkExtraction:
    """Names tidied and deduplicated (case-insensitively); relations only between them."""
    entities: list[ExtractedEntity] = []
    by_folded: dict[str, str] = {}
    for item in reply.entities:
        name = " ".join(item.name.split())
        if not name or len(name) > _MAX_NAME_LENGTH or _fold(name) in by_folded:
            continue
        description = " ".join((item.description or "").split()) or None
        entities.append(ExtractedEntity(name, item.type, description))
        by_folded[_fold(name)] = name
    relations: list[ExtractedRelation] = []
    seen: set[tuple[str, str, str]] = set()
    for rel in reply.relations:
        source = by_folded.get(_fold(rel.source))
        target = by_folded.get(_fold(rel.target))
        if source is None or target is None or source == target:
            continue  # endpoints must be entities of this chunk
        key = (source, target, _relation_type(rel.type))
        if key not in seen:
            seen.add(key)
            relations.append(ExtractedRelation(*key))
    return ChunkExtraction(chunk_id, entities, relations)


def parse_reply(chunk_id: str, content: str) -> ChunkExtraction:
    """Validate and clean one reply's text; raises a retryable ExtractionError when malformed."""
    try:
        reply = ExtractionReply.model_validate_json(content)
    except ValidationError as exc:
        reply = _unfenced(chunk_id, exc)
    return clean_reply(chunk_id, reply)


def _api_error(chunk_id: str, exc: openai.OpenAIError) -> ExtractionError:
    if isinstance(exc, openai.LengthFinishReasonError):
        return ExtractionError(
            f"chunk {chunk_id}: the model's reply was cut off at its token limit",
            retryable=True,
            chunk_id=chunk_id,
        )
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return ExtractionError(
            f"chunk {chunk_id}: the model's content filter stopped the reply",
            retryable=False,
            chunk_id=chunk_id,
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        detail = f"HTTP {status}: {_short(exc.message)}"
    elif isinstance(exc, openai.APIConnectionError):
        retryable = True
        detail = _short(str(exc)) or type(exc).__name__
    elif isinstance(exc, openai.APIResponseValidationError):
        retryable = True
        detail = "the response did not look like a chat completion"
    else:
        retryable = False
        detail = _short(str(exc)) or type(exc).__name__
    return ExtractionError(
        f"chunk {chunk_id}: chat completion failed: {detail}",
        retryable=retryable,
        chunk_id=chunk_id,
    )


@dataclass
class _LoopSemaphore:
    """A semaphore per event loop (asyncio primitives must not cross loops)."""

    size: int
    _by_loop: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = field(
        default_factory=dict
    )

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key, (other, _) in list(self._by_loop.items()):
                if other.is_closed():
                    del self._by_loop[key]
            entry = (loop, asyncio.Semaphore(self.size))
            self._by_loop[id(loop)] = entry
        return entry[1]


class LlmExtractor:
    """Extraction by any OpenAI-compatible chat completions endpoint with structured outputs.

    One request per chunk, at most ``max_concurrency`` in flight per extractor (shared by
    concurrent ``extract`` calls); results come back in input order. A malformed reply (not
    JSON, not the schema, cut off, empty) is asked again for that chunk alone, up to
    ``max_attempts`` requests in all; then the chunk fails with an error naming it, not
    retryable: a batch retry would only ask every chunk again. The first chunk that fails fails
    the call and cancels the requests still pending. The SDK retries transient HTTP failures
    itself (configure ``max_retries`` on the client); what still fails becomes an
    :class:`ExtractionError`, retryable for timeouts, connection errors, 408/409/429 and 5xx,
    not for other 4xx (authentication, bad request, unknown model) nor for a refusal.
    ``temperature`` is sent only when given: some models accept only their default.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        max_concurrency: int = 4,
        max_attempts: int = 3,
        temperature: float | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.client = client
        self.model = model
        self.name = f"llm:{model}"
        self.max_concurrency = max_concurrency
        self.max_attempts = max_attempts
        self.temperature = temperature
        self._semaphore = _LoopSemaphore(max_concurrency)

    async def extract(self, chunks: Sequence[ChunkInput]) -> list[ChunkExtraction]:
        if not chunks:
            return []
        semaphore = self._semaphore.get()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._extract_chunk(c, semaphore)) for c in chunks]
        except BaseExceptionGroup as group_error:
            failures = _leaves(group_error)
            extraction_errors = [e for e in failures if isinstance(e, ExtractionError)]
            if len(extraction_errors) == len(failures):
                # Usually one: the first failure cancels the rest. If several, prefer a
                # permanent one: retrying the batch cannot fix it.
                permanent = [e for e in extraction_errors if not e.retryable]
                chosen = (permanent or extraction_errors)[0]
                raise chosen from chosen.__cause__
            raise
        return [task.result() for task in tasks]

    async def _extract_chunk(
        self, chunk: ChunkInput, semaphore: asyncio.Semaphore
    ) -> ChunkExtraction:
        """The chunk's extraction, asking again (this chunk only) while the reply is malformed."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await self._ask(chunk, semaphore)
            except _MalformedReply as malformed:
                if attempt == self.max_attempts:
                    raise ExtractionError(
                        f"chunk {chunk.chunk_id}: no well-formed reply in {attempt} "
                        f"attempt{'s' if attempt > 1 else ''}; last: "
                        f"{str(malformed.error).removeprefix(f'chunk {chunk.chunk_id}: ')}",
                        retryable=False,
                        chunk_id=chunk.chunk_id,
                    ) from None
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _ask(self, chunk: ChunkInput, semaphore: asyncio.Semaphore) -> ChunkExtraction:
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": _SYSTEM_PROMPT},
            {"role": "user", "content": chunk.text},
        ]
        async with semaphore:
            try:
                with store_span("openai", "chat", {"gen_ai.request.model": self.model}):
                    if self.temperature is None:
                        completion = await self.client.chat.completions.parse(
                            model=self.model, messages=messages, response_format=ExtractionReply
                        )
                    else:
                        completion = await self.client.chat.completions.parse(
                            model=self.model,
                            messages=messages,
                            response_format=ExtractionReply,
                            temperature=self.temperature,
                        )
            except ValidationError as exc:
                try:
                    return clean_reply(chunk.chunk_id, _unfenced(chunk.chunk_id, exc))
                except ExtractionError as malformed:
                    raise _MalformedReply(malformed) from None
            except openai.OpenAIError as exc:
                failure = _api_error(chunk.chunk_id, exc)
                if isinstance(exc, openai.LengthFinishReasonError):
                    raise _MalformedReply(failure) from None
                raise failure from exc
        if not completion.choices:
            raise _MalformedReply(
                ExtractionError(f"chunk {chunk.chunk_id}: the model returned no choices")
            )
        message = completion.choices[0].message
        if message.refusal:
            raise ExtractionError(
                f"chunk {chunk.chunk_id}: the model refused: {_short(message.refusal, 200)}",
                retryable=False,
                chunk_id=chunk.chunk_id,
            )
        if message.parsed is None:
            raise _MalformedReply(
                ExtractionError(f"chunk {chunk.chunk_id}: the model's reply is empty")
            )
        return clean_reply(chunk.chunk_id, message.parsed)


class _MalformedReply(Exception):
    """A reply that asking again may fix (carries the error to raise when attempts run out)."""

    def __init__(self, error: ExtractionError) -> None:
        super().__init__(str(error))
        self.error = error


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        else:
            leaves.append(exc)
    return leaves
