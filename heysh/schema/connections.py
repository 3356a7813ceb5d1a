"""The generic Relay connection every list field returns (named `<Node>Connection`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from strawberry import relay
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from heysh.context import Info
from heysh.resolvers.pagination import Page, PageRequest, encode_cursor, page_request
from heysh.stores.postgres import PageKey

Node = TypeVar("Node")
Row = TypeVar("Row")
Key = TypeVar("Key")

DEFAULT_PAGE_SIZE = 20


def page_args(
    info: Info, name: str, first: int | None, after: str | None, key_type: type[Key]
) -> PageRequest[Key]:
    """The page a connection field's ``first`` / ``after`` ask for, checked against the cap."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    return page_request(name, size, after, info.context.services.settings.max_page_size, key_type)


def document_key(row: Any) -> PageKey:
    """Newest-first lists (domains, documents) are keyed by creation time, then id."""
    return PageKey(row.created_at, row.id)


@strawberry.type
class Edge(Generic[Node]):
    connection: strawberry.Private[str]
    key: strawberry.Private[Any]

    node: Node

    @strawberry.field
    def cursor(self) -> str:
        # Encoded only when asked for: a nested page of hundreds of edges usually is not.
        return self.encoded()

    def encoded(self) -> str:
        return encode_cursor(self.connection, self.key)


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
        key: Callable[[Row], Any],
    ) -> Connection[Node]:
        edges = [Edge(connection=name, key=key(row), node=node(row)) for row in page.rows]
        return cls(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].encoded() if edges else None,
                end_cursor=edges[-1].encoded() if edges else None,
            ),
        )


def selects(selections: Sequence[Any], path: Sequence[str]) -> bool:
    """Whether the query asks for the field at ``path`` below these selections (through
    fragments too), so a resolver can fetch it with its parent instead of after it."""
    if not path:
        return True
    for selection in selections:
        if isinstance(selection, SelectedField):
            found = selection.name == path[0] and selects(selection.selections, path[1:])
        else:  # a fragment: its selections are at this level
            found = isinstance(selection, FragmentSpread | InlineFragment) and selects(
                selection.selections, path
            )
        if found:
            return True
    return False
