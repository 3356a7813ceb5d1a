"""Request-wide rules: authentication, and an `extensions.code` on every error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from heysh.context import Context
from heysh.errors import HeyshError
from heysh.stores.outages import store_outage
from heysh.telemetry.errors import describe

log = logging.getLogger(__name__)

INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})


class RequireAuthentication(SchemaExtension):
    """No operation runs without a verified user, except pure introspection when allowed."""

    def __init__(self, *, allow_anonymous_introspection: bool) -> None:
        self.allow_anonymous_introspection = allow_anonymous_introspection

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and context.user is None and not self._introspection_only():
            message = context.auth_error or "authentication required"
            self.execution_context.result = ExecutionResult(
                data=None,
                errors=[GraphQLError(message, extensions={"code": "UNAUTHENTICATED"})],
            )
        yield

    def _introspection_only(self) -> bool:
        if not self.allow_anonymous_introspection:
            return False
        document = self.execution_context.graphql_document
        if document is None:
            return False
        name = self.execution_context.operation_name
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if name is not None and (definition.name is None or definition.name.value != name):
                continue
            for selection in definition.selection_set.selections:
                field = getattr(selection, "name", None)
                if field is None or field.value not in INTROSPECTION_FIELDS:
                    return False
        return True


class ErrorCodes(SchemaExtension):
    """Give each error a code; hide the text of unexpected ones (they are logged instead).

    A store outage met anywhere (query, DataLoader or mutation) becomes STORE_UNAVAILABLE.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [classify(error) for error in result.errors]


def classify(error: GraphQLError) -> GraphQLError:
    """The error as clients see it: coded, and masked unless heysh raised it on purpose (also
    for each result a subscription streams, see heysh.schema.HeyshSchema)."""
    original = error.original_error
    message = error.message
    extensions = dict(error.extensions or {})
    outage = None if isinstance(original, HeyshError | None) else store_outage(original)
    if outage is not None and original is not None:  # logged by its kind, answered without
        log.warning("store unavailable in %s: %s", error.path, describe(original))
        original, message = outage, str(outage)
    if isinstance(original, HeyshError):
        extensions["code"] = original.code
    elif original is None or isinstance(original, GraphQLError):
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
    else:
        log.error("unexpected error in %s", error.path, exc_info=original)
        return GraphQLError(
            "internal server error",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR"},
        )
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )
