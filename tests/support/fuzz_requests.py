"""Requests for fuzzing: which arguments exist (read from the schema), and how a value is sent.

A target is one argument, or input field inside one, of one root field. A request sends values
for every argument of its root field, as JSON variables, a GraphQL multipart request (files) or
inline literals, with a selection of every argument-free field a few levels down.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from graphql import (
    GraphQLArgument,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_leaf_type,
)
from hypothesis import strategies as st

from tests.support.fuzz_values import (
    ABSENT,
    SCHEMA,
    File,
    RealIds,
    plausible,
    sweep_values,
    typical,
    value_at,
)
from tests.support.graphql import GraphQLClient
from tests.support.hostile import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, auth_headers

FORBIDDEN_CODES = {"INTERNAL_SERVER_ERROR", "STORE_UNAVAILABLE"}
SELECTION_DEPTH = 2  # object levels selected below each root field
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


@dataclass(frozen=True)
class Target:
    """One argument, or input field inside one, of one root field."""

    operation: str  # "query" or "mutation"
    field: str
    path: tuple[str, ...]  # argument name, then input field names

    def __str__(self) -> str:
        return f"{self.operation}.{self.field}({'.'.join(self.path)})"


def _input_paths(type_: GraphQLInputType, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    paths = [prefix]
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        for name, field in named.fields.items():
            paths += _input_paths(field.type, (*prefix, name))
    return paths


def targets() -> list[Target]:
    found = []
    for operation, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type)):
        assert root is not None
        for field_name, field in root.fields.items():
            for arg_name, arg in field.args.items():
                for path in _input_paths(arg.type, (arg_name,)):
                    found.append(Target(operation, field_name, path))
    return found


class Unprintable(Exception):
    """A value with no GraphQL literal form (a file, a key that is no GraphQL name)."""


def literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        assert math.isfinite(value)
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)  # JSON string escapes are GraphQL's too
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) and _NAME.fullmatch(k) for k in value):
            raise Unprintable
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    raise Unprintable


def selection(type_: GraphQLOutputType, depth: int) -> str:
    """A selection of every argument-free field down to ``depth`` object levels."""
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    parts = ["__typename"]
    if isinstance(named, GraphQLUnionType):
        seen: dict[str, str] = {}
        for member in named.types:
            parts.append(f"... on {member.name} {_fields(member, depth, seen)}")
        return "{ " + " ".join(parts) + " }"
    assert isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
    return _fields(named, depth, {}, parts)


def _fields(
    type_: GraphQLObjectType | GraphQLInterfaceType,
    depth: int,
    seen: dict[str, str],
    parts: list[str] | None = None,
) -> str:
    """Fields of ``type_``; a name another union member gave another type is aliased."""
    parts = parts if parts is not None else ["__typename"]
    for name, field in type_.fields.items():
        if any(
            arg.default_value is Undefined and isinstance(arg.type, GraphQLNonNull)
            for arg in field.args.values()
        ):
            continue
        leaf = is_leaf_type(get_named_type(field.type))
        if not leaf and depth == 0:
            continue
        alias = (
            f"{type_.name}_{name}: "
            if seen.setdefault(name, str(field.type)) != str(field.type)
            else ""
        )
        sub = "" if leaf else " " + selection(field.type, depth - 1)
        parts.append(f"{alias}{name}{sub}")
    return "{ " + " ".join(parts) + " }"


@dataclass(frozen=True)
class Request:
    target: Target
    arguments: dict[str, Any]  # argument name -> value (ABSENT: leave it out)
    inline: bool
    accept: str | None

    def build(self) -> tuple[str, dict[str, Any], dict[str, bytes]]:
        """The document, the variables (files as null) and the files by variable path."""
        root = SCHEMA.query_type if self.target.operation == "query" else SCHEMA.mutation_type
        assert root is not None
        field = root.fields[self.target.field]
        declarations, arguments, variables = [], [], {}
        files: dict[str, bytes] = {}
        for index, (name, arg) in enumerate(field.args.items()):
            value = self.arguments.get(name, ABSENT)
            if self.inline and name == self.target.path[0] and value is not ABSENT:
                try:
                    arguments.append(f"{name}: {literal(value)}")
                    continue
                except Unprintable:
                    pass
            declarations.append(f"$a{index}: {arg.type}")
            arguments.append(f"{name}: $a{index}")
            if value is not ABSENT:
                variables[f"a{index}"] = _extract_files(value, f"variables.a{index}", files)
        header = f"({', '.join(declarations)})" if declarations else ""
        args = f"({', '.join(arguments)})" if arguments else ""
        query = (
            f"{self.target.operation} Fuzz{header} "
            f"{{ {self.target.field}{args} {selection(field.type, SELECTION_DEPTH)} }}"
        )
        return query, variables, files


def _extract_files(value: Any, path: str, files: dict[str, bytes]) -> Any:
    if isinstance(value, File):
        files[path] = value.body
        return None
    if isinstance(value, dict):
        return {k: _extract_files(v, f"{path}.{k}", files) for k, v in value.items()}
    if isinstance(value, list):
        return [_extract_files(v, f"{path}.{i}", files) for i, v in enumerate(value)]
    return value


async def send(api: GraphQLClient, request: Request, user: str) -> httpx.Response:
    query, variables, files = request.build()
    headers = auth_headers(api, user, request.accept or "")
    if request.accept is None:
        del headers["Accept"]
    operations = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
    if not files:
        headers["Content-Type"] = "application/json"
        return await api.http.post("/graphql", content=operations.encode("ascii"), headers=headers)
    names = {path: str(i) for i, path in enumerate(files)}
    return await api.http.post(
        "/graphql",
        data={
            "operations": operations,
            "map": json.dumps({names[path]: [path] for path in files}),
        },
        files={
            names[path]: (f"f{names[path]}.txt", body, "text/plain") for path, body in files.items()
        },
        headers=headers,
    )


def requests(target: Target, ids: RealIds) -> st.SearchStrategy[Request]:
    root = SCHEMA.query_type if target.operation == "query" else SCHEMA.mutation_type
    assert root is not None
    args = root.fields[target.field].args
    values = {
        name: value_at(arg.type, ids, f"{target.field}.{name}", target.path[1:])
        if name == target.path[0]
        else plausible(arg.type, ids, f"{target.field}.{name}")
        for name, arg in args.items()
    }
    return st.builds(
        Request,
        st.just(target),
        st.fixed_dictionaries(values),
        st.booleans(),
        st.sampled_from(
            [
                GRAPHQL_RESPONSE_JSON,
                APPLICATION_JSON,
                f"{GRAPHQL_RESPONSE_JSON}, {APPLICATION_JSON};q=0.9",
                "*/*",
                None,
            ]
        ),
    )


def assert_handled(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:2000]
    assert response.headers["content-type"].startswith((APPLICATION_JSON, GRAPHQL_RESPONSE_JSON)), (
        response.headers
    )
    body = response.json()
    assert isinstance(body, dict), body
    errors = body.get("errors") or []
    codes = {(error.get("extensions") or {}).get("code") for error in errors}
    assert not codes & FORBIDDEN_CODES, body


def optional(field: GraphQLInputField | GraphQLArgument) -> bool:
    return not isinstance(field.type, GraphQLNonNull)


def with_value(
    type_: GraphQLInputType,
    ids: RealIds,
    hint: str,
    path: tuple[str, ...],
    value: Any,
    sparse: bool,
) -> Any:
    """A typical value of ``type_`` holding ``value`` at ``path``; ``sparse`` leaves out the
    nullable fields beside it (so `file` is not refused merely for arriving with `content`)."""
    if not path:
        return value
    named = get_named_type(type_)
    assert isinstance(named, GraphQLInputObjectType)
    return siblings(named.fields, ids, hint, path, value, sparse)


def siblings(
    fields: Mapping[str, GraphQLInputField] | Mapping[str, GraphQLArgument],
    ids: RealIds,
    hint: str,
    path: tuple[str, ...],
    value: Any,
    sparse: bool,
) -> dict[str, Any]:
    built = {}
    for name, field in fields.items():
        if name == path[0]:
            built[name] = with_value(field.type, ids, f"{hint}.{name}", path[1:], value, sparse)
        elif not (sparse and optional(field)):
            built[name] = typical(field.type, ids, f"{hint}.{name}")
    return built


def sweep(target: Target, ids: RealIds) -> list[Request]:
    root = SCHEMA.query_type if target.operation == "query" else SCHEMA.mutation_type
    assert root is not None
    args = root.fields[target.field].args
    arg_type: GraphQLInputType = args[target.path[0]].type
    for name in target.path[1:]:
        named = get_named_type(arg_type)
        assert isinstance(named, GraphQLInputObjectType)
        arg_type = named.fields[name].type
    requests = []
    for value in sweep_values(arg_type, ids, f"{target.field}.{'.'.join(target.path)}"):
        variants = [siblings(args, ids, target.field, target.path, value, s) for s in (False, True)]
        for arguments in variants[:1] if variants[0] == variants[1] else variants:
            requests.append(Request(target, arguments, inline=False, accept=GRAPHQL_RESPONSE_JSON))
    return requests
