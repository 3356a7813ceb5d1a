from __future__ import annotations

import random
import uuid

import pytest

from heysh.pipeline.extraction import HeuristicExtractor
from heysh.pipeline.extraction.base import (
    ChunkExtraction,
    ChunkInput,
    ExtractedEntity,
    ExtractedRelation,
)
from heysh.pipeline.resolution import (
    ResolvedEntity,
    ResolvedRelation,
    Resolver,
    entity_id,
    normalize_name,
    resolve,
)

DOMAIN = "0b9a4f0e-7f34-4e8a-9a53-4f6c2f0c1d11"
OTHER_DOMAIN = "5d1c7a52-3c1e-4b0a-8e53-8a0d2b6f9e22"


def person(name: str, description: str | None = None) -> ExtractedEntity:
    return ExtractedEntity(name, "PERSON", description)


def place(name: str) -> ExtractedEntity:
    return ExtractedEntity(name, "LOCATION")


def related(a: str, b: str, type_: str = "RELATED_TO") -> ExtractedRelation:
    return ExtractedRelation(a, b, type_)


def chunk(
    chunk_id: str,
    entities: list[ExtractedEntity],
    relations: list[ExtractedRelation] | None = None,
) -> ChunkExtraction:
    return ChunkExtraction(chunk_id, entities, relations or [])


def named(entities: list[ResolvedEntity], name: str) -> ResolvedEntity:
    [found] = [e for e in entities if e.name == name]
    return found


# --- normalisation and ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("Marie Curie", "marie curie"),
        ("  MARIE   CURIE ", "marie curie"),
        ("Dr. Marie Curie", "marie curie"),
        ("Mr Smith", "smith"),
        ("Mrs. Jane Smith", "jane smith"),
        ("Ms. Jane Smith", "jane smith"),
        ("Prof. Dr. Hans Müller", "hans müller"),
        ("Curie's", "curie"),
        ("Curie\u2019s", "curie"),  # typographic apostrophe
        ("The University of Paris", "university of paris"),
        ("the Hague", "hague"),
        ("The", "the"),  # never normalised to nothing
        ("Dr.", "dr"),
        ("U.S. Army", "us army"),
        ("J. R. R. Tolkien", "jrr tolkien"),
        ("J.R.R. Tolkien", "jrr tolkien"),
        ("Apple Inc.", "apple"),
        ("Microsoft Corporation", "microsoft"),
        ("Procter & Gamble", "procter and gamble"),
        ("Skłodowska-Curie", "skłodowska curie"),
        ("O'Brien", "obrien"),
        ("\uff2d\uff41\uff52\uff49\uff45", "marie"),  # full-width letters: NFKC
        ("Straße", "strasse"),  # case folding, not just lower()
        ("e\u0301cole", "école"),  # combining accent composed by NFKC
        ("Paris, France!", "paris france"),
        ("  ", ""),
    ],
)
def test_normalize_name(name: str, normalized: str) -> None:
    assert normalize_name(name) == normalized


def test_normalize_name_is_idempotent() -> None:
    for name in ["Dr. Marie Curie", "The U.S. Army", "Apple Inc.", "J. R. R. Tolkien", "A & B"]:
        once = normalize_name(name)
        assert normalize_name(once) == once


def test_entity_id_is_a_deterministic_uuid_keyed_by_domain_name_and_type() -> None:
    id_ = entity_id(DOMAIN, "Marie Curie", "PERSON")
    assert uuid.UUID(id_).version == 5
    assert id_ == entity_id(DOMAIN, "Dr. MARIE  CURIE", "PERSON")
    assert id_ == entity_id(DOMAIN, "Marie Curie's", "person")
    assert id_ != entity_id(OTHER_DOMAIN, "Marie Curie", "PERSON")
    assert id_ != entity_id(DOMAIN, "Marie Curie", "ORGANIZATION")
    assert id_ != entity_id(DOMAIN, "Pierre Curie", "PERSON")
    # unknown types are CONCEPT, as everywhere else
    assert entity_id(DOMAIN, "Radium", "ELEMENT") == entity_id(DOMAIN, "Radium", "CONCEPT")


# --- resolution ---------------------------------------------------------------------------------


def test_the_same_entity_in_two_documents_resolves_to_the_same_id() -> None:
    first, _ = resolve(DOMAIN, [chunk("doc1-0", [person("Marie Curie"), place("Paris")])])
    second, _ = resolve(DOMAIN, [chunk("doc2-0", [person("Dr. Marie Curie"), place("Warsaw")])])
    assert named(first, "Marie Curie").id == named(second, "Dr. Marie Curie").id
    assert named(first, "Marie Curie").id == entity_id(DOMAIN, "marie curie", "PERSON")
    other, _ = resolve(OTHER_DOMAIN, [chunk("x", [person("Marie Curie")])])
    assert other[0].id != named(first, "Marie Curie").id  # domains never share entities


def test_duplicates_within_a_batch_merge_into_one_entity() -> None:
    entities, _ = resolve(
        DOMAIN,
        [
            chunk("c1", [person("Marie Curie", "A physicist."), place("Paris")]),
            chunk("c2", [person("MARIE CURIE"), place("Paris")]),
            chunk("c3", [person("Marie Curie", "A chemist and physicist."), place("Warsaw")]),
            chunk("c4", [person("Marie Curie", "A physicist.")]),
        ],
    )
    assert [(e.name, e.type) for e in entities] == [
        ("Marie Curie", "PERSON"),
        ("Paris", "LOCATION"),
        ("Warsaw", "LOCATION"),
    ]
    curie = entities[0]
    assert curie.chunk_ids == ["c1", "c2", "c3", "c4"]
    assert curie.description == "A physicist."  # the most frequent
    assert named(entities, "Paris").chunk_ids == ["c1", "c2"]
    assert named(entities, "Warsaw").description is None


def test_display_name_is_the_most_frequent_form_then_the_longest_then_alphabetical() -> None:
    entities, _ = resolve(
        DOMAIN,
        [
            chunk("a", [place("NEW YORK")]),
            chunk("b", [place("New York")]),
            chunk("c", [place("New York")]),
        ],
    )
    assert [e.name for e in entities] == ["New York"]
    tie, _ = resolve(DOMAIN, [chunk("a", [place("The Hague")]), chunk("b", [place("Hague")])])
    assert [e.name for e in tie] == ["The Hague"]  # longest wins a tie
    alphabetical, _ = resolve(DOMAIN, [chunk("a", [place("PARIS")]), chunk("b", [place("Paris")])])
    assert [e.name for e in alphabetical] == ["PARIS"]  # same length: alphabetical


def test_same_name_with_different_types_stays_apart_unless_one_is_untyped() -> None:
    entities, _ = resolve(
        DOMAIN,
        [
            chunk(
                "a", [ExtractedEntity("Jordan", "LOCATION"), ExtractedEntity("Jordan", "PERSON")]
            ),
            chunk("b", [ExtractedEntity("Paris", "CONCEPT")]),
            chunk("c", [ExtractedEntity("Paris", "LOCATION")]),
            chunk(
                "d",
                [
                    ExtractedEntity("Apple", "CONCEPT"),
                    ExtractedEntity("Apple Inc.", "ORGANIZATION"),
                ],
            ),
            chunk("e", [ExtractedEntity("Radium", "ELEMENT")]),
        ],
    )
    assert sorted((e.name, e.type) for e in entities) == [
        ("Apple Inc.", "ORGANIZATION"),  # "Apple" and "Apple Inc." share the key "apple"
        ("Jordan", "LOCATION"),
        ("Jordan", "PERSON"),
        ("Paris", "LOCATION"),
        ("Radium", "CONCEPT"),
    ]
    assert named(entities, "Paris").chunk_ids == ["b", "c"]
    assert named(entities, "Paris").id == entity_id(DOMAIN, "Paris", "LOCATION")


def test_a_last_name_merges_into_the_only_full_name_that_ends_with_it() -> None:
    entities, relations = resolve(
        DOMAIN,
        [
            chunk(
                "c1", [person("Marie Curie"), place("Warsaw")], [related("Marie Curie", "Warsaw")]
            ),
            chunk("c2", [person("Curie"), place("Paris")], [related("Curie", "Paris")]),
            chunk("c3", [person("Curie")]),
        ],
    )
    assert [e.name for e in entities] == ["Marie Curie", "Paris", "Warsaw"]
    curie = named(entities, "Marie Curie")  # "Curie" is more frequent but not the full name
    assert curie.chunk_ids == ["c1", "c2", "c3"]
    assert curie.id == entity_id(DOMAIN, "Marie Curie", "PERSON")
    assert {(r.source_id, r.target_id) for r in relations} == {
        tuple(sorted((curie.id, named(entities, "Warsaw").id))),
        tuple(sorted((curie.id, named(entities, "Paris").id))),
    }


def test_an_ambiguous_last_name_stays_apart() -> None:
    entities, _ = resolve(
        DOMAIN,
        [
            chunk("c1", [person("Marie Curie"), person("Pierre Curie")]),
            chunk("c2", [person("Curie")]),
        ],
    )
    assert [e.name for e in entities] == ["Curie", "Marie Curie", "Pierre Curie"]


def test_relation_weight_counts_supporting_chunks_and_evidence_lists_them() -> None:
    extractions = [
        chunk("c2", [person("Marie Curie"), place("Paris")], [related("Marie Curie", "Paris")]),
        chunk("c1", [person("Marie Curie"), place("Paris")], [related("Paris", "Marie Curie")]),
        chunk(
            "c3",
            [person("Marie Curie"), place("Paris"), place("Warsaw")],
            [
                related("Marie Curie", "Paris"),
                related("Marie Curie", "Paris"),  # twice in one chunk: still one chunk
                related("Marie Curie", "Warsaw", "born in"),
                related("Marie Curie", "Pierre Curie"),  # not an entity of the chunk
            ],
        ),
    ]
    entities, relations = resolve(DOMAIN, extractions)
    curie, paris, warsaw = (named(entities, n).id for n in ("Marie Curie", "Paris", "Warsaw"))
    assert relations == sorted(
        [
            ResolvedRelation(
                min(curie, paris), max(curie, paris), "RELATED_TO", 3, ["c1", "c2", "c3"]
            ),
            ResolvedRelation(curie, warsaw, "BORN_IN", 1, ["c3"]),
        ],
        key=lambda r: (r.source_id, r.target_id, r.type),
    )


def test_directed_relations_keep_their_direction() -> None:
    _, relations = resolve(
        DOMAIN,
        [
            chunk(
                "c",
                [person("Marie Curie"), person("Pierre Curie")],
                [
                    related("Marie Curie", "Pierre Curie", "MARRIED_TO"),
                    related("Pierre Curie", "Marie Curie", "MARRIED_TO"),
                ],
            )
        ],
    )
    marie = entity_id(DOMAIN, "Marie Curie", "PERSON")
    pierre = entity_id(DOMAIN, "Pierre Curie", "PERSON")
    assert sorted((r.source_id, r.target_id) for r in relations) == sorted(
        [(marie, pierre), (pierre, marie)]
    )


def test_self_relations_are_dropped_after_merging() -> None:
    entities, relations = resolve(
        DOMAIN,
        [
            chunk(
                "c1",
                [person("Marie Curie"), person("MARIE CURIE"), person("Curie"), place("Paris")],
                [
                    related("Marie Curie", "MARIE CURIE"),
                    related("Curie", "Marie Curie"),
                    related("Curie", "Paris"),
                ],
            )
        ],
    )
    assert [e.name for e in entities] == ["MARIE CURIE", "Paris"]  # a tie: alphabetical
    assert [(r.weight, r.evidence) for r in relations] == [(1, ["c1"])]


def test_resolution_is_deterministic_whatever_the_input_order() -> None:
    extractions = [
        chunk(
            f"c{i}",
            [
                person("Marie Curie", f"note {i % 3}"),
                place("Paris"),
                person("Curie"),
                place(f"City {i % 4}"),
            ],
            [related("Marie Curie", "Paris"), related("Curie", f"City {i % 4}")],
        )
        for i in range(12)
    ]
    expected = resolve(DOMAIN, extractions)
    for seed in range(5):
        shuffled = extractions[:]
        random.Random(seed).shuffle(shuffled)
        assert resolve(DOMAIN, shuffled) == expected
    entities, relations = expected
    assert [e.name for e in entities] == sorted(e.name for e in entities)
    assert relations == sorted(relations, key=lambda r: (r.source_id, r.target_id, r.type))


def test_empty_names_and_empty_batches() -> None:
    assert resolve(DOMAIN, []) == ([], [])
    entities, relations = resolve(
        DOMAIN,
        [chunk("c", [person("  "), person("!!!"), place("Paris")], [related("!!!", "Paris")])],
    )
    assert [e.name for e in entities] == ["Paris"]
    assert relations == []


async def test_heuristic_extraction_resolves_across_chunks() -> None:
    chunks = [
        ChunkInput(
            "c1", "Marie Curie studied at the University of Paris. Curie later taught there."
        ),
        ChunkInput(
            "c2", "In Paris, Dr. Curie founded the Radium Institute with the University of Paris."
        ),
        ChunkInput("c3", "The Radium Institute still stands in Paris."),
    ]
    extractions = await HeuristicExtractor().extract(chunks)
    entities, relations = resolve(DOMAIN, extractions)
    by_name = {e.name: e for e in entities}
    assert by_name["Marie Curie"].chunk_ids == ["c1", "c2"]  # "Curie" merged into Marie Curie
    assert "Curie" not in by_name
    assert by_name["University of Paris"].type == "ORGANIZATION"
    assert by_name["Radium Institute"].chunk_ids == ["c2", "c3"]
    assert by_name["Paris"].type == "LOCATION"
    institute, paris = by_name["Radium Institute"].id, by_name["Paris"].id
    [link] = [r for r in relations if {r.source_id, r.target_id} == {institute, paris}]
    assert (link.weight, link.evidence) == (2, ["c2", "c3"])


def test_merges_decided_over_a_domain_apply_to_a_document_that_lacks_the_full_name() -> None:
    full = ChunkExtraction("c1", [ExtractedEntity("Marie Curie", "PERSON")], [])
    short = ChunkExtraction("c2", [ExtractedEntity("Curie", "PERSON")], [])
    domain = Resolver("d")
    domain.add(full)
    domain.add(short)
    merges = domain.merges()
    names = {e.id: e.name for e in domain.finish()[0]}

    alone = Resolver("d")
    alone.add(short)
    (own,), _ = alone.finish()
    assert own.name == "Curie"  # on its own the document cannot know who Curie is

    rebuilt = Resolver("d")
    rebuilt.add(short)
    (merged,), _ = rebuilt.finish(merges, names)
    assert merged.name == "Marie Curie"
    assert merged.id == entity_id("d", "Marie Curie", "PERSON")
    assert merged.chunk_ids == ["c2"]
