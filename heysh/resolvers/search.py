"""search: a domain's chunks by vector, keyword (BM25), hybrid or graph-re-ranked relevance.

Weaviate finds the chunks; the graph adds the entities each mentions, in one statement for all
hits whatever the mode. GRAPH mode re-ranks vector candidates by the graph (see DESIGN.md,
"Search"): a chunk rises when it mentions a well-connected entity that many of the candidates,
weighted by their similarity to the query, mention too, directly or through a neighbour.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from heysh.context import Context
from heysh.errors import InvalidInputError
from heysh.policy import Permission
from heysh.resolvers.access import Refusal, require
from heysh.resolvers.text import LINE_BREAKS, refused_character
from heysh.services import Services
from heysh.stores.graph_values import ChunkNode, EntityNode, LinkedEntity
from heysh.stores.vectors import EmbedderMismatchError, VectorHit

ENTITIES_PER_HIT = 50  # the entities listed with a hit (and weighed by GRAPH mode), by name
GRAPH_CANDIDATES_PER_HIT = 4  # GRAPH mode re-ranks this many vector candidates per hit asked ...
MAX_GRAPH_CANDIDATES = 200  # ... but no more than this (unless the limit itself is larger)

_HIDDEN = Refusal("NOT_FOUND", "no such domain", "domainId")


class SearchMode(StrEnum):
    VECTOR = "VECTOR"
    KEYWORD = "KEYWORD"
    HYBRID = "HYBRID"
    GRAPH = "GRAPH"


@dataclass(frozen=True)
class Hit:
    chunk: ChunkNode
    entities: list[EntityNode]
    score: float
    vector_score: float | None = None
    keyword_score: float | None = None
    graph_score: float | None = None


async def search(
    ctx: Context,
    domain_id: UUID | None,
    query: str,
    mode: SearchMode,
    limit: int,
    alpha: float,
) -> list[Hit] | None:
    """The hits, best first; None when the domain is unknown or the caller is no member of it
    (the same answer, so a stranger learns nothing). Arguments are checked before anything."""
    query = _checked(ctx.services, query, limit, alpha)
    if domain_id is None or await require(ctx, domain_id, Permission.VIEW, _HIDDEN) is not None:
        return None
    domain = str(domain_id)
    vectors = ctx.services.vectors
    if mode is SearchMode.KEYWORD:  # BM25 needs no embedder, so no embedder check either
        found = await vectors.search_keyword(domain, query, limit)
        return await _joined(ctx, domain, found)
    vector = await _embed_query(ctx.services, query)
    if mode is SearchMode.VECTOR:
        found = await vectors.search_vector(domain, vector, limit)
    elif mode is SearchMode.HYBRID:
        found = await vectors.search_hybrid(domain, query, vector, alpha, limit)
    else:
        return await _graph_search(ctx, domain, vector, limit, alpha)
    return await _joined(ctx, domain, found)


def _checked(services: Services, query: str, limit: int, alpha: float) -> str:
    settings = services.settings
    if not 1 <= limit <= settings.max_search_limit:
        raise InvalidInputError(
            f"limit must be between 1 and {settings.max_search_limit}, not {limit}"
        )
    if not 0.0 <= alpha <= 1.0:  # NaN fails too
        raise InvalidInputError(f"alpha must be between 0 and 1, not {alpha}")
    if len(query) > settings.max_search_query_length:
        raise InvalidInputError(
            f"query must be at most {settings.max_search_query_length} characters, not {len(query)}"
        )
    if problem := refused_character(query, allow=LINE_BREAKS):
        raise InvalidInputError(f"query {problem}")
    if not query.strip():
        raise InvalidInputError("query must not be empty or blank")
    return query.strip()


async def _embed_query(services: Services, query: str) -> list[float]:
    """The query's vector, by the embedder the collection's vectors were made with.

    A collection that records no embedder (none yet, or made before records existed) cannot be
    checked; the worker records its own when it next starts.
    """
    embedder = await services.query_embedder()
    recorded = await services.vectors.recorded_embedder()
    if recorded is not None and (recorded.model, recorded.dimensions) != (
        embedder.name,
        embedder.dimensions,
    ):
        raise EmbedderMismatchError(
            f"search cannot embed the query: the chunks were embedded with {recorded}, but this "
            f"api embeds with {embedder.name} ({embedder.dimensions} dimensions); configure the "
            "api with the worker's embedder (HEYSH_EMBEDDER, HEYSH_OPENAI_EMBEDDING_MODEL/"
            "_DIMENSIONS)"
        )
    (vector,) = await embedder.embed([query])
    return vector


async def _joined(ctx: Context, domain: str, found: Sequence[VectorHit]) -> list[Hit]:
    """Weaviate's hits with their chunks' entities, in one graph statement for all of them."""
    if not found:
        return []
    joined = await ctx.services.graph.search_hits(
        domain, [hit.chunk_id for hit in found], ENTITIES_PER_HIT
    )
    hits = []
    for hit in found:
        in_graph = joined.get(hit.chunk_id)
        if in_graph is not None:
            _prime(ctx, in_graph.chunk, in_graph.entities)
        hits.append(
            Hit(
                chunk=in_graph.chunk if in_graph else _chunk_of(domain, hit),
                entities=in_graph.entities if in_graph else [],
                score=hit.score,
                vector_score=hit.vector_score,
                keyword_score=hit.keyword_score,
            )
        )
    return hits


async def _graph_search(
    ctx: Context, domain: str, vector: Sequence[float], limit: int, alpha: float
) -> list[Hit]:
    wanted = max(limit, min(limit * GRAPH_CANDIDATES_PER_HIT, MAX_GRAPH_CANDIDATES))
    found = await ctx.services.vectors.search_vector(domain, vector, wanted)
    if not found:
        return []
    candidates = await ctx.services.graph.search_graph_candidates(
        domain, [hit.chunk_id for hit in found], ENTITIES_PER_HIT
    )
    similarity = {hit.chunk_id: hit.vector_score or 0.0 for hit in found}
    mentions = {cid: chunk.entities for cid, chunk in candidates.chunks.items()}
    graph = graph_scores(similarity, mentions)
    hits = []
    for hit in found:
        candidate = candidates.chunks.get(hit.chunk_id)
        entities = [linked.node for linked in candidate.entities] if candidate else []
        if candidate is not None:
            _prime(ctx, candidate.chunk, entities)
        vector_score = similarity[hit.chunk_id]
        hits.append(
            Hit(
                chunk=candidate.chunk if candidate else _chunk_of(domain, hit),
                entities=entities,
                score=alpha * vector_score + (1 - alpha) * graph[hit.chunk_id],
                vector_score=vector_score,
                graph_score=graph[hit.chunk_id],
            )
        )
    hits.sort(key=lambda h: (-h.score, -(h.vector_score or 0.0), h.chunk.id))
    return hits[:limit]


def graph_scores(
    similarity: Mapping[str, float], mentions: Mapping[str, Sequence[LinkedEntity]]
) -> dict[str, float]:
    """GRAPH mode's score of each candidate chunk, 0..1 (DESIGN.md, "Search").

    An entity's relevance is the summed similarity (negative counts as 0) of the candidates that
    mention it or one of its neighbours, times 1 + ln(1 + its degree in the domain); a chunk's raw
    score is the relevance of the most relevant entity it mentions, and the best chunk's is 1.
    """
    weight = {chunk_id: max(0.0, value) for chunk_id, value in similarity.items()}
    mentioned_by: dict[str, set[str]] = defaultdict(set)
    entities: dict[str, LinkedEntity] = {}
    for chunk_id, linked in mentions.items():
        for entity in linked:
            mentioned_by[entity.node.id].add(chunk_id)
            entities[entity.node.id] = entity
    relevance = {}
    for entity_id, entity in entities.items():
        support = set(mentioned_by[entity_id])
        for neighbour in entity.neighbours:
            support |= mentioned_by.get(neighbour, set())
        relevance[entity_id] = sum(weight.get(c, 0.0) for c in support) * (
            1.0 + math.log1p(entity.degree)
        )
    raw = {
        chunk_id: max((relevance[e.node.id] for e in mentions.get(chunk_id, ())), default=0.0)
        for chunk_id in similarity
    }
    best = max(raw.values(), default=0.0)
    return {chunk_id: value / best if best > 0 else 0.0 for chunk_id, value in raw.items()}


def _prime(ctx: Context, chunk: ChunkNode, entities: Sequence[EntityNode]) -> None:
    """Hand what the search read to the request's loaders (already authorized: the domain's)."""
    ctx.loaders.chunk.prime(chunk.id, chunk)
    for entity in entities:
        ctx.loaders.entity.prime(entity.id, entity)


def _chunk_of(domain: str, hit: VectorHit) -> ChunkNode:
    """A hit whose chunk the graph does not hold yet (its document is still being written)."""
    return ChunkNode(
        id=hit.chunk_id,
        domain_id=domain,
        document_id=hit.document_id,
        index=hit.index,
        start=hit.start,
        end=hit.end,
        text=hit.text,
    )
