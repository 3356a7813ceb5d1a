"""A query's cost, estimated before it runs, and a budget that refuses the expensive ones.

Every field costs 1 plus what its selections cost; a field with a ``first`` argument (a
connection) or a ``limit`` argument (a bounded list: ``search``, ``neighborhood``) multiplies what
its selections cost by the number of rows it may return, so
``domains(first: 100) { … documents(first: 100) { … } }`` costs about 100 x 100 x its leaves.
The estimate uses the schema's defaults when the argument is not given, and variables' values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    get_named_type,
    value_from_ast,
    value_from_ast_untyped,
)
from graphql.type.definition import GraphQLInterfaceType
from strawberry.extensions import SchemaExtension

CODE = "QUERY_TOO_COSTLY"
# The arguments that say how many rows a field may return.
ROW_ARGUMENTS = ("first", "limit")


class QueryCostLimit(SchemaExtension):
    """Refuse, before any resolver runs, an operation whose estimated cost exceeds ``budget``."""

    def __init__(self, *, budget: int) -> None:
        self.budget = budget

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            operation = _operation(document.definitions, context.operation_name)
            if operation is not None:
                fragments = {
                    d.name.value: d
                    for d in document.definitions
                    if isinstance(d, FragmentDefinitionNode)
                }
                estimate = _Estimate(
                    context.schema._schema, fragments, context.variables or {}, operation
                )
                cost = estimate.operation()
                if cost > self.budget:
                    context.result = ExecutionResult(
                        data=None,
                        errors=[
                            GraphQLError(
                                f"query cost {cost} exceeds the budget of {self.budget}: "
                                "ask for smaller pages or fewer nested connections",
                                extensions={"code": CODE, "cost": cost, "budget": self.budget},
                            )
                        ],
                    )
        yield


def _operation(definitions: Any, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


class _Estimate:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        operation: OperationDefinitionNode,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.operation_node = operation
        self.variables = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and definition.default_value is not None:
                self.variables[name] = value_from_ast_untyped(definition.default_value)

    def operation(self) -> int:
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }[self.operation_node.operation]
        return self._selections(root, self.operation_node.selection_set, set())

    def _selections(
        self, parent: GraphQLNamedType | None, selections: SelectionSetNode, seen: set[str]
    ) -> int:
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self._field(parent, selection, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self._selections(target, selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:  # validation reports these
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value)
                total += self._selections(target, fragment.selection_set, seen | {name})
        return total

    def _field(self, parent: GraphQLNamedType | None, node: FieldNode, seen: set[str]) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 1
        definition = parent.fields.get(name)
        if definition is None or node.selection_set is None:
            return 1
        children = self._selections(get_named_type(definition.type), node.selection_set, seen)
        return 1 + self._rows(node, definition) * children

    def _rows(self, node: FieldNode, definition: GraphQLField) -> int:
        """How many rows the field may return: its ``first`` or ``limit``, given or by default;
        else 1."""
        name = next((n for n in ROW_ARGUMENTS if n in definition.args), None)
        if name is None:
            return 1
        row_arg = definition.args[name]
        value: Any = row_arg.default_value
        for argument in node.arguments or ():
            if argument.name.value == name:
                given = value_from_ast(argument.value, row_arg.type, self.variables)
                if given is not Undefined:  # an unset variable leaves the default
                    value = given
        return value if isinstance(value, int) and value > 0 else 1
