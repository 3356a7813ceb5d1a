"""The public GraphQL contract: composes the per-area roots, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.relay import GlobalIDValueError
from strawberry.types import ExecutionContext

from heysh.config import Environment, Settings
from heysh.context import Info
from heysh.schema.chunks import Chunk
from heysh.schema.common import User
from heysh.schema.cost import QueryCostLimit
from heysh.schema.documents import Document, DocumentMutations, DocumentQueries
from heysh.schema.domains import (
    Domain,
    DomainMutations,
    DomainOwnerMutations,
    DomainQueries,
    DomainSubscriptions,
)
from heysh.schema.entities import Entity, EntityQueries
from heysh.schema.extensions import ErrorCodes, RequireAuthentication, classify
from heysh.schema.members import MemberMutations
from heysh.schema.relationships import Relationship
from heysh.schema.runs import RunMutations, RunQueries, RunSubscriptions, WorkflowRun
from heysh.schema.search import SearchQueries
from heysh.schema.traversals import TraversalQueries
from heysh.telemetry.metrics import ApiMetrics, operation_metrics
from heysh.telemetry.tracing import graphql_tracing

NODE_TYPES: dict[
    str,
    type[Domain]
    | type[Document]
    | type[Chunk]
    | type[Entity]
    | type[Relationship]
    | type[WorkflowRun],
] = {
    "Domain": Domain,
    "Document": Document,
    "Chunk": Chunk,
    "Entity": Entity,
    "Relationship": Relationship,
    "WorkflowRun": WorkflowRun,
}


@strawberry.type
class ViewerQueries:
    @strawberry.field(description="The authenticated caller.")
    def viewer(self, info: Info) -> User | None:
        return User(id=strawberry.ID(str(info.context.user_id)))

    @strawberry.field(description="Any object the caller can see, by global id.")
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        try:
            global_id = relay.GlobalID.from_id(id)
        except GlobalIDValueError:
            return None
        node_type = NODE_TYPES.get(global_id.type_name)
        if node_type is None:
            return None
        (found,) = await node_type.resolve_nodes(info=info, node_ids=[global_id.node_id])
        return found


@strawberry.type
class Query(
    ViewerQueries,
    DomainQueries,
    DocumentQueries,
    EntityQueries,
    RunQueries,
    TraversalQueries,
    SearchQueries,
):
    pass


@strawberry.type
class Mutation(
    DomainMutations, DocumentMutations, RunMutations, DomainOwnerMutations, MemberMutations
):
    pass


@strawberry.type
class Subscription(RunSubscriptions, DomainSubscriptions):
    pass


class HeyshSchema(strawberry.Schema):
    """Streams code their errors too: ErrorCodes sees only an operation's first result."""

    # Given each streamed result's coded errors (the api's metrics count them), when set.
    count_streamed_errors: Callable[[list[GraphQLError]], None] | None = None

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        results = await super().stream(*args, **kwargs)
        if not hasattr(results, "__aiter__"):
            return results
        return _coded(results, self.count_streamed_errors)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry logs each error with the query and its text, which can quote the caller's
        variables (a document's content). ErrorCodes logs outages and unexpected errors instead;
        the others are the caller's mistakes, answered to the caller."""


async def _coded(
    results: AsyncIterator[Any], count: Callable[[list[GraphQLError]], None] | None
) -> AsyncIterator[Any]:
    async for result in results:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [classify(error) for error in errors]
            if count is not None:
                count(result.errors)
        yield result


def build_schema(
    settings: Settings | None = None, metrics: ApiMetrics | None = None
) -> strawberry.Schema:
    # The SDL is the same in every environment; printing it needs no deployment's settings.
    settings = settings or Settings(env=Environment.TEST)
    # Factories, not instances: strawberry builds fresh extensions for every request.
    extensions: list[Callable[[], SchemaExtension]] = [
        # First, so its span holds the others' work and sees the errors ErrorCodes has coded.
        *graphql_tracing(),  # none while tracing is off
        *operation_metrics(metrics),  # before ErrorCodes, so it sees their codes; none when off
        ErrorCodes,
        partial(
            RequireAuthentication,
            allow_anonymous_introspection=settings.introspection_enabled,
        ),
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(QueryCostLimit, budget=settings.max_query_cost),
    ]
    if not settings.introspection_enabled:
        extensions.append(partial(AddValidationRules, [NoSchemaIntrospectionCustomRule]))
    schema = HeyshSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        types=list(NODE_TYPES.values()),
    )
    if metrics is not None:
        schema.count_streamed_errors = metrics.count_errors
    return schema
