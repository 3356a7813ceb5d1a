"""search: a domain's chunks ranked by vector, keyword, hybrid or graph relevance."""

from __future__ import annotations

from typing import Annotated

import strawberry

from heysh.context import Info
from heysh.resolvers import search as resolve
from heysh.schema.chunks import Chunk
from heysh.schema.common import parse_global_uuid
from heysh.schema.documents import Document
from heysh.schema.entities import Entity

SearchMode = strawberry.enum(
    resolve.SearchMode,
    name="SearchMode",
    description=(
        "VECTOR: nearest chunks by cosine similarity to the embedded query. KEYWORD: BM25 over "
        "chunk text and document title. HYBRID: Weaviate's fusion of both, weighted by alpha. "
        "GRAPH: vector candidates re-ranked by the knowledge graph."
    ),
)


@strawberry.type(description="A chunk a search found, where it comes from, and how it scored.")
class SearchHit:
    chunk: Chunk
    score: float = strawberry.field(
        description=(
            "What the hits are ranked by, highest first. VECTOR: vectorScore. KEYWORD: "
            "keywordScore. HYBRID: Weaviate's relative score fusion, 0..1: alpha x the vector "
            "score and (1 - alpha) x the BM25 score, each scaled to 0..1 over the result set. "
            "GRAPH: alpha x vectorScore + (1 - alpha) x graphScore."
        )
    )
    vector_score: float | None = strawberry.field(
        description=(
            "Cosine similarity of query and chunk (1 - cosine distance); null in KEYWORD mode "
            "and for a HYBRID hit the vector search did not return."
        )
    )
    keyword_score: float | None = strawberry.field(
        description=(
            "BM25 score of the query over the chunk's text and its document's title; null in "
            "VECTOR and GRAPH mode and for a HYBRID hit without a keyword match."
        )
    )
    graph_score: float | None = strawberry.field(
        description=(
            "GRAPH mode only, 0..1: the relevance of the most relevant entity the chunk mentions, "
            "relative to the best candidate's (see DESIGN.md, Search)."
        )
    )
    entities: list[Entity] = strawberry.field(
        description=(
            f"The entities the chunk mentions, ordered by name, at most {resolve.ENTITIES_PER_HIT}."
        )
    )
    document_id: strawberry.Private[str]

    @classmethod
    def from_hit(cls, hit: resolve.Hit) -> SearchHit:
        return cls(
            chunk=Chunk.from_node(hit.chunk),
            score=hit.score,
            vector_score=hit.vector_score,
            keyword_score=hit.keyword_score,
            graph_score=hit.graph_score,
            entities=[Entity.from_node(entity) for entity in hit.entities],
            document_id=hit.chunk.document_id,
        )

    @strawberry.field(description="The document the chunk is part of (null once deleted).")
    async def document(self, info: Info) -> Document | None:
        (document,) = await Document.resolve_nodes(info=info, node_ids=[self.document_id])
        return document


@strawberry.type(description="The hits of a search, best first.")
class SearchResult:
    hits: list[SearchHit]


@strawberry.type
class SearchQueries:
    @strawberry.field(
        description=(
            "Search a domain's chunks; null when the domain is unknown or the caller is not a "
            "member of it."
        )
    )
    async def search(
        self,
        info: Info,
        domain_id: strawberry.ID,
        query: Annotated[
            str,
            strawberry.argument(
                description="1 to HEYSH_MAX_SEARCH_QUERY_LENGTH (default 1000) characters."
            ),
        ],
        mode: SearchMode = resolve.SearchMode.HYBRID,  # type: ignore[valid-type]
        limit: Annotated[
            int,
            strawberry.argument(description="Hits, 1 to HEYSH_MAX_SEARCH_LIMIT (default 50)."),
        ] = 10,
        alpha: Annotated[
            float,
            strawberry.argument(
                description=(
                    "HYBRID: weight of the vector score against BM25 (0 keyword only, 1 vector "
                    "only). GRAPH: weight of vectorScore against graphScore. 0 to 1."
                )
            ),
        ] = 0.5,
    ) -> SearchResult | None:
        hits = await resolve.search(
            info.context, parse_global_uuid(domain_id, "Domain"), query, mode, limit, alpha
        )
        if hits is None:
            return None
        return SearchResult(hits=[SearchHit.from_hit(hit) for hit in hits])
