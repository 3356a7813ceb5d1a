"""The generic Relay connection every list field returns (named `<Node>Connection`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry
from strawberry import relay

from heysh.resolvers.pagination import Page, encode_cursor
from heysh.stores.postgres import PageKey

Node = TypeVar("Node")
Row = TypeVar("Row")


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: relay.PageInfo

    @classmethod
    def of(
        cls,
        name: str,
        page: Page[Row],
        node: Callable[[Row], Node],
        key: Callable[[Row], PageKey],
    ) -> Connection[Node]:
        edges = [Edge(cursor=encode_cursor(name, key(row)), node=node(row)) for row in page.rows]
        return cls(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
