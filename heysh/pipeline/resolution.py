"""Entity resolution: turn per-chunk extractions into one set of entities and weighted relations.

The resolution key of an entity is ``(normalize_name(name), type)`` within a domain, and its id
is a UUID5 of ``(domain, key)`` (:func:`entity_id`). Because the id depends on nothing else, the
same entity named in two documents of a domain gets the same id, and the graph store's
``MERGE`` on the id joins them without a lookup.

Within one batch (a document, or a whole domain when the graph is rebuilt), :func:`resolve`
also merges, in this order:

1. **Untyped into typed.** A ``CONCEPT`` (the extractors' "don't know") whose normalised name
   occurs with exactly one other type in the batch becomes that type: "Paris" typed CONCEPT in
   one chunk and LOCATION in another is one LOCATION.
2. **Last name into full name.** A PERSON whose normalised name is the trailing part of exactly
   one longer PERSON name in the batch merges into it: "Curie" into "Marie Curie", when no
   other Curie (say "Pierre Curie") is in the batch. With two candidates, "Curie" stays
   apart: guessing would join two people. The merged entity keeps the longer name's id.

Then relations are mapped onto the merged entities; self-relations disappear. ``RELATED_TO`` is
undirected, so its endpoints are stored in id order and both directions add up to one relation;
other types keep the direction the extractor gave.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from heysh.pipeline.extraction.base import DEFAULT_RELATION_TYPE, ENTITY_TYPES, ChunkExtraction

__all__ = [
    "Merges",
    "ResolvedEntity",
    "ResolvedRelation",
    "Resolver",
    "entity_id",
    "normalize_name",
    "resolve",
]

ENTITY_NAMESPACE = uuid.UUID("6f1c3c1e-8c55-5d4e-9a57-2a8f3e0b7d10")
"""Namespace of entity ids (fixed forever: changing it would re-key every stored entity)."""

# Forms of address dropped from the front of a name ("Dr. Marie Curie" is "marie curie").
_HONORIFICS = frozenset(
    {
        "dr", "mr", "mrs", "ms", "mx", "miss", "prof", "professor", "sir", "dame", "madame",
        "mme", "mlle", "mademoiselle", "monsieur",
    }
)  # fmt: skip
# Legal-form suffixes dropped from the end ("Apple Inc." is "apple").
_LEGAL_SUFFIXES = frozenset(
    {"inc", "incorporated", "corp", "corporation", "ltd", "limited", "llc", "plc", "gmbh"}
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_POSSESSIVE = re.compile(r"(?<=\w)'s\b")
_DOTTED = re.compile(r"^(?:\w\.)+\w?$")  # U.S., U.S.A, e.g.
_NON_WORD = re.compile(r"[\W_]+")
_RELATION_TYPE_JUNK = re.compile(r"[^0-9A-Z]+")


def normalize_name(name: str) -> str:
    """The comparable form of a name: the resolution key (with the type) within a domain.

    Unicode NFKC, case-folded; possessive 's removed; dots of acronyms and apostrophes dropped
    ("U.S." → "us", "O'Brien" → "obrien"); "&" read as "and"; other punctuation a space;
    whitespace collapsed; then leading honorifics (Dr., Mr., Mrs., Ms., Prof., …), a leading
    "the" and trailing legal forms (Inc., Corp., Ltd, …) removed while words remain. Runs of
    single letters are joined ("J. R. R. Tolkien" and "J.R.R. Tolkien" are "jrr tolkien").
    """
    text = unicodedata.normalize("NFKC", name).casefold().translate(_APOSTROPHES)
    text = _POSSESSIVE.sub("", text)
    words: list[str] = []
    for raw in text.replace("&", " and ").split():
        raw = raw.strip(".")
        if _DOTTED.match(raw):
            raw = raw.replace(".", "")
        words.extend(_NON_WORD.sub(" ", raw.replace("'", "")).split())
    words = _join_initials(words)
    while len(words) > 1 and words[0] in _HONORIFICS:
        words = words[1:]
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words = words[:-1]
    return " ".join(words)


def _join_initials(words: list[str]) -> list[str]:
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) >= 2:
            joined.append("".join(run))
        else:
            joined.extend(run)
        run = []
        if word:
            joined.append(word)
    return joined


def _canonical_type(type_: str) -> str:
    upper = type_.strip().upper()
    return upper if upper in ENTITY_TYPES else "CONCEPT"


def _key_id(domain_id: str, normalized: str, type_: str) -> str:
    return str(uuid.uuid5(ENTITY_NAMESPACE, f"{domain_id}\x1f{type_}\x1f{normalized}"))


def entity_id(domain_id: str, name: str, type: str) -> str:
    """The entity's id: a UUID5 of (domain, normalised name, type); the same everywhere."""
    return _key_id(domain_id, normalize_name(name), _canonical_type(type))


@dataclass(frozen=True)
class ResolvedEntity:
    id: str
    name: str  # the most frequent surface form; ties: the longest, then alphabetical
    type: str
    description: str | None
    chunk_ids: list[str]  # sorted, unique


@dataclass(frozen=True)
class ResolvedRelation:
    source_id: str
    target_id: str
    type: str
    weight: int  # number of distinct chunks stating the relation
    evidence: list[str]  # those chunks' ids, sorted


_Key = tuple[str, str]  # (normalised name, type)
Merges = dict[_Key, _Key]  # a key to the key it merges into


def _most_common(counts: Counter[str]) -> str | None:
    """The most frequent value; ties go to the longest, then the alphabetically first."""
    if not counts:
        return None
    return min(counts, key=lambda value: (-counts[value], -len(value), value))


def _relation_type(raw: str) -> str:
    return _RELATION_TYPE_JUNK.sub("_", raw.strip().upper()).strip("_") or DEFAULT_RELATION_TYPE


def _merge_untyped(keys: Iterable[_Key]) -> dict[_Key, _Key]:
    types_by_name: dict[str, set[str]] = defaultdict(set)
    for normalized, type_ in keys:
        types_by_name[normalized].add(type_)
    merges: dict[_Key, _Key] = {}
    for normalized, types in types_by_name.items():
        typed = types - {"CONCEPT"}
        if "CONCEPT" in types and len(typed) == 1:
            merges[(normalized, "CONCEPT")] = (normalized, typed.pop())
    return merges


def _merge_last_names(keys: Iterable[_Key]) -> dict[_Key, _Key]:
    people = sorted({key[0] for key in keys if key[1] == "PERSON"})
    longer_by_suffix: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for normalized in people:
        words = tuple(normalized.split())
        for i in range(1, len(words)):
            longer_by_suffix[words[i:]].add(normalized)
    merges: dict[_Key, _Key] = {}
    for normalized in people:
        candidates = longer_by_suffix.get(tuple(normalized.split()), set())
        if len(candidates) == 1:
            merges[(normalized, "PERSON")] = (candidates.pop(), "PERSON")
    return merges


def _final(key: _Key, merges: dict[_Key, _Key]) -> _Key:
    seen = {key}
    while key in merges:
        key = merges[key]
        if key in seen:  # cannot happen (merges only go to longer names); be safe anyway
            break
        seen.add(key)
    return key


class Resolver:
    """Resolution fed one extraction at a time, so a document's extractions can be read from the
    store page by page: what it keeps is the entities and relations found, not the extractions.
    """

    def __init__(self, domain_id: str) -> None:
        self._domain_id = domain_id
        self._surfaces: dict[_Key, Counter[str]] = defaultdict(Counter)
        self._descriptions: dict[_Key, Counter[str]] = defaultdict(Counter)
        self._chunks: dict[_Key, set[str]] = defaultdict(set)
        # (source key, target key, relation type) -> the chunks that state it
        self._evidence: dict[tuple[_Key, _Key, str], set[str]] = defaultdict(set)

    def add(self, extraction: ChunkExtraction) -> None:
        chunk_id = extraction.chunk_id
        endpoint: dict[str, _Key] = {}  # entity name as written in this chunk -> key
        for entity in extraction.entities:
            normalized = normalize_name(entity.name)
            if not normalized:
                continue
            key = (normalized, _canonical_type(entity.type))
            self._surfaces[key][" ".join(entity.name.split())] += 1
            if entity.description and entity.description.strip():
                self._descriptions[key][" ".join(entity.description.split())] += 1
            self._chunks[key].add(chunk_id)
            endpoint.setdefault(entity.name, key)
        for relation in extraction.relations:
            source_key = endpoint.get(relation.source)
            target_key = endpoint.get(relation.target)
            if source_key is None or target_key is None:
                continue  # an endpoint the chunk does not list (or whose name normalised away)
            self._evidence[(source_key, target_key, _relation_type(relation.type))].add(chunk_id)

    def merges(self) -> Merges:
        """Which keys merge into which, decided from every extraction added so far."""
        merges = _merge_untyped(self._surfaces)
        merges.update(_merge_last_names({_final(key, merges) for key in self._surfaces}))
        return merges

    def finish(
        self, merges: Merges | None = None, names: dict[str, str] | None = None
    ) -> tuple[list[ResolvedEntity], list[ResolvedRelation]]:
        """Entities sorted by display name (case-insensitive), then type and id; relations by
        source id, target id and type. The same extractions always give the same output.

        ``merges`` decided over a wider batch (a whole domain, for a rebuild) replace the ones
        these extractions alone would give, so every document maps a name the same way; ``names``
        (entity id to display name, from that batch) then names each entity the same way too.
        """
        surfaces, descriptions, chunks = self._surfaces, self._descriptions, self._chunks
        if merges is None:
            merges = self.merges()
        groups: dict[_Key, list[_Key]] = defaultdict(list)
        for key in surfaces:
            groups[_final(key, merges)].append(key)

        entities: list[ResolvedEntity] = []
        ids: dict[_Key, str] = {}
        for final, members in groups.items():
            normalized, type_ = final
            own_names: Counter[str] = Counter()
            all_descriptions: Counter[str] = Counter()
            chunk_ids: set[str] = set()
            for member in members:
                if member[0] == normalized:  # "Curie" may not name the entity "Marie Curie"
                    own_names.update(surfaces[member])
                all_descriptions.update(descriptions[member])
                chunk_ids |= chunks[member]
            ids[final] = _key_id(self._domain_id, normalized, type_)
            given = names.get(ids[final]) if names else None
            entities.append(
                ResolvedEntity(
                    id=ids[final],
                    name=given or _most_common(own_names) or normalized,
                    type=type_,
                    description=_most_common(all_descriptions),
                    chunk_ids=sorted(chunk_ids),
                )
            )
        entities.sort(key=lambda e: (e.name.casefold(), e.name, e.type, e.id))

        evidence: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for (source_key, target_key, type_), chunk_ids in self._evidence.items():
            source = ids[_final(source_key, merges)]
            target = ids[_final(target_key, merges)]
            if source == target:
                continue
            if type_ == DEFAULT_RELATION_TYPE and target < source:
                source, target = target, source
            evidence[(source, target, type_)] |= chunk_ids
        relations = [
            ResolvedRelation(source, target, type_, len(chunk_ids), sorted(chunk_ids))
            for (source, target, type_), chunk_ids in sorted(evidence.items())
        ]
        return entities, relations


def resolve(
    domain_id: str, extractions: Iterable[ChunkExtraction]
) -> tuple[list[ResolvedEntity], list[ResolvedRelation]]:
    """Merge the entities of a batch of chunk extractions and weigh their relations."""
    resolver = Resolver(domain_id)
    for extraction in extractions:
        resolver.add(extraction)
    return resolver.finish()
