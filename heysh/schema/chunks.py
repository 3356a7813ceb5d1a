"""Chunks: the passages a document was split into, each embedded and linked to its entities."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from heysh.context import Info
from heysh.resolvers import graph as read
from heysh.schema.common import parse_uuid
from heysh.schema.connections import DEFAULT_PAGE_SIZE, Connection, page_args
from heysh.schema.entities import Entity, entity_key
from heysh.stores.graph_values import ChunkKey, ChunkNode, NameKey

if TYPE_CHECKING:
    from heysh.schema.documents import Document


@strawberry.type(description="A passage of a document, with its place in the document's text.")
class Chunk(relay.Node):
    id: relay.NodeID[str]
    index: int = strawberry.field(description="Position of the chunk in its document, from 0.")
    text: str
    start_offset: int = strawberry.field(
        description="Offset in characters of the chunk's first character in the document."
    )
    end_offset: int = strawberry.field(
        description="Offset in characters just past the chunk's last character."
    )
    domain_id: strawberry.Private[str]
    document_id: strawberry.Private[str]

    @classmethod
    def from_node(cls, node: ChunkNode) -> Chunk:
        return cls(
            id=node.id,
            index=node.index,
            text=node.text,
            start_offset=node.start,
            end_offset=node.end,
            domain_id=node.domain_id,
            document_id=node.document_id,
        )

    @strawberry.field(description="The document this chunk is part of.")
    async def document(
        self, info: Info
    ) -> Annotated[Document, strawberry.lazy("heysh.schema.documents")] | None:
        from heysh.schema.documents import Document

        (document,) = await Document.resolve_nodes(info=info, node_ids=[self.document_id])
        return document

    @strawberry.field(description="Entities the chunk mentions, by name.")
    async def entities(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Entity]:
        request = page_args(info, "chunkEntities", first, after, NameKey)
        page = await read.children(
            info.context.loaders.chunk_entities, self.id, self.domain_id, request
        )
        return Connection.of("chunkEntities", page, Entity.from_node, entity_key)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Chunk | None]:
        ids = [str(parsed) if (parsed := parse_uuid(i)) else None for i in node_ids]
        nodes = await info.context.loaders.chunk.load_many([i for i in ids if i is not None])
        by_id = {node.id: node for node in nodes if node is not None}
        return [cls.from_node(by_id[i]) if i in by_id else None for i in ids]


def chunk_key(node: ChunkNode) -> ChunkKey:
    return ChunkKey(node.document_id, node.index)
