"""Values for fuzzing GraphQL arguments: hostile ones, plausible ones, and a fixed sweep.

Everything is derived from the input types of the schema; ids come from the fuzzing user's real
objects (``RealIds``) where a plausible value needs one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)
from hypothesis import strategies as st

from heysh.schema import build_schema

SCHEMA: GraphQLSchema = build_schema()._schema
_NODE = SCHEMA.get_type("Node")
assert isinstance(_NODE, GraphQLInterfaceType)
NODE_TYPES = sorted(t.name for t in SCHEMA.get_possible_types(_NODE))


@dataclass(frozen=True)
class File:
    """An Upload sent as a real multipart file."""

    body: bytes


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()  # leave the variable or input field out altogether


@dataclass(frozen=True)
class RealIds:
    """Global ids and cursors of objects the fuzzing user really has."""

    by_type: dict[str, list[str]]
    cursors: list[str]

    def all(self) -> list[str]:
        return [i for ids in self.by_type.values() for i in ids]

    def for_name(self, hint: str) -> list[str]:
        """Real ids of the node type the innermost name in ``hint`` mentions, else all of them.

        `addDocument.input.domainId` gives domains, `document.id` documents.
        """
        for part in reversed(hint.lower().split(".")):
            matches = [t for t in NODE_TYPES if t.lower() in part and self.by_type.get(t)]
            if matches:
                return self.by_type[max(matches, key=len)]
        return self.all()


SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff\ud800",
    "\u202e\u2066",
    "\ufeff",
    "\r\n\t\x0b\x0c\x1c\x85\u2028",
    "null",
    "undefined",
    "{}",
    "[]",
    "0",
    "-1",
    "1e309",
    "NaN",
    "true",
    "' OR '1'='1",
    "%s%s%n",
    "$1",
    "{{7*7}}",
    "../../etc/passwd",
    "\U0001d518\U0001d52b\u200d\U0001f469\u200d\U0001f467 \u0639\u0631\u0628\u0649",
    "x" * 101,
    "y" * 501,
    "z" * 2001,
    "w" * 100_001,
]


# Characters Postgres or UTF-8 cannot hold, and ones labels must not contain, mixed with plain ones.
NASTY_ALPHABET = ["\x00", "\ud800", "\udc00", "\x07", "\n", "\t", "\x7f", "\x85", "\u2028"]
NASTY_ALPHABET += ["\u202e", "\ufeff", "a", "\u00e9", " "]


def weighted(*choices: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """one_of with weights (Hypothesis's one_of picks each branch alike)."""
    pool = [strategy for strategy, weight in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def nasty_text() -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(NASTY_ALPHABET), min_size=1, max_size=12)


def any_text() -> st.SearchStrategy[str]:
    # characters() without a codec includes lone surrogates, which JSON can carry as \udXXX.
    return st.one_of(
        nasty_text(),
        st.text(st.characters(), max_size=40),
        st.text(st.characters(codec="ascii"), max_size=40),
        st.sampled_from(SPECIAL_STRINGS),
    )


def base64_junk() -> st.SearchStrategy[str]:
    return st.one_of(
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    )


def global_id(type_name: str, node_id: str) -> str:
    raw = f"{type_name}:{node_id}".encode("utf-8", errors="surrogatepass")
    return base64.b64encode(raw).decode()


def node_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: u.hex.upper()),
        st.uuids().map(lambda u: f"{{{u}}}"),
        st.uuids().map(lambda u: f"urn:uuid:{u}"),
        st.builds(lambda u, t: f"{u}{t}", st.uuids(), nasty_text()),
        any_text(),
        st.integers().map(str),
    )


def global_ids() -> st.SearchStrategy[str]:
    """Valid-looking global ids: every node type (or junk) with well- or ill-formed node ids."""
    type_names = weighted((st.sampled_from(NODE_TYPES), 3), (any_text(), 1))
    return st.builds(global_id, type_names, node_ids())


def tainted_real_ids(ids: RealIds) -> st.SearchStrategy[str]:
    """The user's real global ids with hostile text in their node id."""

    def taint(real: str, text: str, before: bool) -> str:
        type_name, _, node_id = base64.b64decode(real).decode().partition(":")
        return global_id(type_name, text + node_id if before else node_id + text)

    return st.builds(taint, st.sampled_from(ids.all()), nasty_text(), st.booleans())


def cursors(ids: RealIds) -> st.SearchStrategy[str]:
    def encode(when: str, node_id: str) -> str:
        raw = f"{when}|{node_id}".encode("utf-8", errors="surrogatepass")
        return base64.urlsafe_b64encode(raw).decode()

    moments = st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()), any_text()
    )
    made = st.builds(encode, moments, node_ids())
    return st.one_of(made, st.sampled_from(ids.cursors)) if ids.cursors else made


def json_junk() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        any_text(),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )


def hostile_strings(ids: RealIds) -> st.SearchStrategy[str]:
    return weighted(
        (nasty_text(), 3),
        (any_text(), 3),
        (base64_junk(), 1),
        (global_ids(), 2),
        (cursors(ids), 1),
    )


def hostile(type_: GraphQLInputType, ids: RealIds, hint: str) -> st.SearchStrategy[Any]:
    """Anything a client could send for a value of ``type_``: wrong types included."""
    named = get_named_type(type_)
    junk = json_junk()
    if isinstance(named, GraphQLInputObjectType):
        good = plausible(named, ids, hint)
        extra = st.dictionaries(st.text(max_size=8), json_junk(), min_size=1, max_size=2)
        return st.one_of(
            junk, st.builds(lambda a, b: {**a, **b} if isinstance(a, dict) else a, good, extra)
        )
    if isinstance(named, GraphQLEnumType):
        return st.one_of(st.sampled_from(list(named.values)), junk)
    assert isinstance(named, GraphQLScalarType), named
    typed: dict[str, st.SearchStrategy[Any]] = {
        "ID": weighted(
            (hostile_strings(ids), 4),
            (tainted_real_ids(ids), 3),
            (st.sampled_from(ids.all()), 1),
        ),
        "String": hostile_strings(ids),
        "Int": st.one_of(
            st.integers(),
            st.integers(min_value=-(2**31), max_value=2**31 - 1),
            st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 10**100]),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        "Float": st.floats(allow_nan=False, allow_infinity=False),
        "Boolean": st.booleans(),
        "Upload": st.builds(
            File,
            st.one_of(
                st.binary(max_size=200),
                st.text(st.characters(), max_size=80).map(
                    lambda t: t.encode("utf-8", errors="surrogatepass")
                ),
                nasty_text().map(lambda t: t.encode("utf-8", errors="surrogatepass")),
            ),
        ),
    }
    scalar = typed.get(named.name, hostile_strings(ids))
    return weighted((scalar, 6), (junk, 1), (st.just(ABSENT), 1))


def plausible(type_: GraphQLInputType, ids: RealIds, hint: str) -> st.SearchStrategy[Any]:
    """What a well-behaved client would send, using the fuzzing user's real objects."""
    if isinstance(type_, GraphQLNonNull):
        return _plausible_named(type_.of_type, ids, hint)
    return weighted((_plausible_named(type_, ids, hint), 2), (st.none(), 1), (st.just(ABSENT), 1))


def _plausible_named(type_: GraphQLInputType, ids: RealIds, hint: str) -> st.SearchStrategy[Any]:
    if isinstance(type_, GraphQLList):
        return st.lists(plausible(type_.of_type, ids, hint), max_size=2)
    if isinstance(type_, GraphQLInputObjectType):
        return input_object(type_, ids, hint, ())
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from(list(type_.values))
    assert isinstance(type_, GraphQLScalarType), type_
    words = st.text(
        st.characters(codec="ascii", categories=["L", "N", "Zs"]), min_size=1, max_size=30
    )
    if type_.name == "String" and is_cursor(hint) and ids.cursors:
        return st.sampled_from(ids.cursors)
    typed: dict[str, st.SearchStrategy[Any]] = {
        "ID": st.sampled_from(ids.for_name(hint)),
        "String": words.filter(str.strip),
        "Int": st.integers(min_value=0, max_value=10),
        "Float": st.floats(min_value=0, max_value=1),
        "Boolean": st.booleans(),
        "Upload": st.none(),
    }
    return typed.get(type_.name, words)


def is_cursor(hint: str) -> bool:
    return hint.rsplit(".", 1)[-1] in ("after", "before")


def typical(type_: GraphQLInputType, ids: RealIds, hint: str) -> Any:
    """One well-formed value of ``type_``, the same every time."""
    if isinstance(type_, GraphQLNonNull):
        return typical(type_.of_type, ids, hint)
    if isinstance(type_, GraphQLList):
        return [typical(type_.of_type, ids, hint)]
    if isinstance(type_, GraphQLInputObjectType):
        return {name: typical(f.type, ids, f"{hint}.{name}") for name, f in type_.fields.items()}
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    assert isinstance(type_, GraphQLScalarType), type_
    if type_.name == "String" and is_cursor(hint):
        return ids.cursors[0] if ids.cursors else None
    return {
        "ID": ids.for_name(hint)[0],
        "String": "Typical text about Lisbon",
        "Int": 1,
        "Float": 0.5,
        "Boolean": False,
        "Upload": None,
    }.get(type_.name, "typical")


def input_object(
    type_: GraphQLInputObjectType, ids: RealIds, hint: str, path: tuple[str, ...]
) -> st.SearchStrategy[dict[str, Any]]:
    """A plausible input object, except for the field at ``path``, which is hostile."""
    fields = {
        name: value_at(field.type, ids, f"{hint}.{name}", path[1:])
        if path and path[0] == name
        else plausible(field.type, ids, f"{hint}.{name}")
        for name, field in type_.fields.items()
    }
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not ABSENT}
    )


def value_at(
    type_: GraphQLInputType, ids: RealIds, hint: str, path: tuple[str, ...]
) -> st.SearchStrategy[Any]:
    if not path:
        return hostile(type_, ids, hint)
    named = get_named_type(type_)
    assert isinstance(named, GraphQLInputObjectType)
    return input_object(named, ids, hint, path)


STRING_SWEEP = ["\x00", "a\x00b", "\ud800", "x\udfff", "bell\x07", "two\nlines", "\x85", " "]
STRING_SWEEP += ["z" * 100_001]
WRONG_TYPES = [None, True, 1.5, [], {}]


def sweep_values(type_: GraphQLInputType, ids: RealIds, hint: str) -> list[Any]:
    """The hostile values every argument of ``type_`` gets, each in one request."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        return [*WRONG_TYPES, "\x00", {"unknown": 1}, {**typical(named, ids, hint), "unknown": 1}]
    if isinstance(named, GraphQLEnumType):
        return [*WRONG_TYPES, "NOT_A_VALUE", "\x00"]
    ids_sweep = [global_id(t, bad) for t in NODE_TYPES for bad in ("\x00", "not-a-uuid", "")]
    ids_sweep += [global_id("Nope", "\x00"), "////", "\x00"]
    for real in ids.all():
        type_name, _, node_id = base64.b64decode(real).decode().partition(":")
        ids_sweep += [global_id(type_name, node_id + "\x00"), global_id(type_name, node_id.upper())]
    by_type: dict[str, list[Any]] = {
        "ID": ids_sweep,
        "String": STRING_SWEEP,
        "Int": [2**31, -(2**31) - 1, 10**100, -1, 1e300, "1"],
        "Float": [1e308, -1e308, "1"],
        "Boolean": ["true", 1],
        "Upload": [
            "file",
            42,
            {"read": 1},
            File(b""),
            File(b"\x00"),
            File(b"\xff\xfe"),
            File("\ud800".encode("utf-8", errors="surrogatepass")),
        ],
    }
    return [*WRONG_TYPES, *by_type.get(named.name, STRING_SWEEP)]
