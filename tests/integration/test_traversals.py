"""Graph traversals through GraphQL: `neighborhood` and `path`, on a graph ingested through
addDocument, bounded by their arguments and answering only inside the caller's domains."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from strawberry.relay import GlobalID

from heysh.services import Services
from tests.support.documents import active_domain, add_document, add_member, raw_id, wait_document
from tests.support.graphql import GraphQLClient
from tests.support.query_count import StatementCounter
from tests.support.store_state import entity_keys, relationship_weights

pytestmark = pytest.mark.integration

OWNER = "tara-traversal"
STRANGER = "sam-stranger"
VIEWER = "vic-viewer"

# Lower-case filler names nothing, so each paragraph's names land in chunks of their own.
_FILLER = " ".join(
    ["the weather in the valley was mild and the crops grew slowly through the long season."] * 14
)
# The heuristic extractor relates names that share a sentence. That gives the chain
# Alice - Bruno - Carla - Dmitri, a branch Bruno - Elena, and an island Xavier - Yolanda; Bruno -
# Carla is stated in two chunks, so it is the one edge of weight 2.
CHAIN = f"""Bruno Castell trained Carla Dumont.

{_FILLER}

Alice Morgan admired Bruno Castell. Carla Dumont mentored Dmitri Volkov.
Later Bruno Castell wrote to Elena Farris.

{_FILLER}

Bruno Castell trained Carla Dumont again.
Xavier Quinn never met Yolanda Reyes until the war ended.
"""
PEOPLE = {
    "Alice Morgan": "alice",
    "Bruno Castell": "bruno",
    "Carla Dumont": "carla",
    "Dmitri Volkov": "dmitri",
    "Elena Farris": "elena",
    "Xavier Quinn": "xavier",
    "Yolanda Reyes": "yolanda",
}

NEIGHBORHOOD = """
query($id: ID!, $depth: Int! = 1, $limit: Int! = 50, $types: [String!]) {
  neighborhood(entityId: $id, depth: $depth, limit: $limit, types: $types) {
    truncated
    nodes { id name mentionCount domain { id } }
    edges { id type weight source { id name } target { id name } } } }
"""
PATH = """
query($from: ID!, $to: ID!, $maxDepth: Int! = 4) {
  path(fromEntityId: $from, toEntityId: $to, maxDepth: $maxDepth) {
    length nodes { id name } edges { id type weight source { name } target { name } } } }
"""


@dataclass(frozen=True)
class Chain:
    domain: str
    ids: dict[str, str]  # short name -> global Entity id

    def raw(self, name: str) -> str:
        return raw_id(self.ids[name])


@pytest.fixture(scope="module")
async def chain(api: GraphQLClient, services: Services) -> Chain:
    domain = await active_domain(api, OWNER, "Traversals")
    added = await add_document(api, OWNER, domain, "Chain", CHAIN)
    assert added["__typename"] == "AddDocumentSuccess", added
    document = await wait_document(api, OWNER, added["document"]["id"])
    assert document["status"] == "READY", document

    # What the extractor made of it, checked in the graph before any test relies on it.
    keys = await entity_keys(services, raw_id(domain))
    assert sorted(name for _, name, _ in keys) == sorted(PEOPLE)
    ids = {PEOPLE[name]: str(GlobalID("Entity", key)) for key, name, _ in keys}
    weights = sorted((await relationship_weights(services, raw_id(domain))).values())
    assert weights == [1, 1, 1, 1, 2], weights
    # The only relationship type the offline extractor writes is RELATED_TO: give the island a
    # second, typed edge (the way the pipeline writes edges) for the `types` filter.
    await services.graph.merge_relations(
        [
            {
                "source": raw_id(ids["xavier"]),
                "target": raw_id(ids["yolanda"]),
                "type": "WORKED_WITH",
                "id": str(uuid.uuid4()),
                "weight": 1,
            }
        ]
    )
    return Chain(domain, ids)


async def neighborhood(
    api: GraphQLClient, entity: str, user: str = OWNER, **arguments: Any
) -> dict[str, Any]:
    data = await api.data(NEIGHBORHOOD, {"id": entity, **arguments}, user=user)
    result: dict[str, Any] = data["neighborhood"]
    return result


def names(subgraph: dict[str, Any]) -> list[str]:
    return [node["name"] for node in subgraph["nodes"]]


def pairs(subgraph: dict[str, Any]) -> set[frozenset[str]]:
    return {frozenset((e["source"]["name"], e["target"]["name"])) for e in subgraph["edges"]}


def pair(a: str, b: str) -> frozenset[str]:
    return frozenset((a, b))


def code(body: dict[str, Any]) -> Any:
    return body["errors"][0]["extensions"]["code"]


async def test_depth_one_holds_the_entity_and_its_neighbours_and_each_depth_adds_a_level(
    api: GraphQLClient, chain: Chain
) -> None:
    one = await neighborhood(api, chain.ids["alice"], depth=1)
    assert names(one) == ["Alice Morgan", "Bruno Castell"]
    assert pairs(one) == {pair("Alice Morgan", "Bruno Castell")}
    assert one["truncated"] is False
    assert all(node["domain"]["id"] == chain.domain for node in one["nodes"])
    assert all(node["mentionCount"] >= 1 for node in one["nodes"])

    two = await neighborhood(api, chain.ids["alice"], depth=2)
    # Breadth first: the start, its level, then the next level, heaviest edge first.
    assert names(two) == ["Alice Morgan", "Bruno Castell", "Carla Dumont", "Elena Farris"]
    assert pairs(two) == {
        pair("Alice Morgan", "Bruno Castell"),
        pair("Bruno Castell", "Carla Dumont"),
        pair("Bruno Castell", "Elena Farris"),
    }
    assert two["truncated"] is False

    three = await neighborhood(api, chain.ids["alice"], depth=3)
    assert names(three) == [*names(two), "Dmitri Volkov"]
    assert pair("Carla Dumont", "Dmitri Volkov") in pairs(three)
    assert "Xavier Quinn" not in names(three)  # not connected, however deep


async def test_edges_are_the_graphs_own_relationships_with_their_direction_and_weight(
    api: GraphQLClient, chain: Chain
) -> None:
    subgraph = await neighborhood(api, chain.ids["bruno"], depth=1)
    (heavy,) = [e for e in subgraph["edges"] if e["weight"] == 2]
    assert {heavy["source"]["name"], heavy["target"]["name"]} == {"Bruno Castell", "Carla Dumont"}
    for edge in subgraph["edges"]:
        found = await api.data(
            "query($id: ID!) { node(id: $id) { id ... on Relationship { type weight"
            " source { id } target { id } } } }",
            {"id": edge["id"]},
            user=OWNER,
        )
        assert found["node"] == {
            "id": edge["id"],
            "type": edge["type"],
            "weight": edge["weight"],
            "source": {"id": edge["source"]["id"]},
            "target": {"id": edge["target"]["id"]},
        }


async def test_a_limit_below_the_neighbourhood_returns_exactly_limit_nodes_heaviest_first(
    api: GraphQLClient, chain: Chain
) -> None:
    whole = await neighborhood(api, chain.ids["bruno"], depth=1)
    assert sorted(names(whole)) == sorted(
        ["Bruno Castell", "Alice Morgan", "Carla Dumont", "Elena Farris"]
    )
    assert whole["truncated"] is False
    # The heaviest neighbour first, then the others by id: the same cut every time.
    assert names(whole)[:2] == ["Bruno Castell", "Carla Dumont"]
    equal = sorted(["alice", "elena"], key=chain.raw)
    assert [node["id"] for node in whole["nodes"][2:]] == [chain.ids[n] for n in equal]

    cut = await neighborhood(api, chain.ids["bruno"], depth=1, limit=2)
    assert cut["truncated"] is True
    assert names(cut) == ["Bruno Castell", "Carla Dumont"]
    assert pairs(cut) == {pair("Bruno Castell", "Carla Dumont")}
    assert await neighborhood(api, chain.ids["bruno"], depth=1, limit=2) == cut

    three = await neighborhood(api, chain.ids["bruno"], depth=2, limit=3)
    assert three["truncated"] is True
    assert three["nodes"] == whole["nodes"][:3]

    alone = await neighborhood(api, chain.ids["bruno"], depth=3, limit=1)
    assert (names(alone), alone["edges"], alone["truncated"]) == (["Bruno Castell"], [], True)

    exact = await neighborhood(api, chain.ids["bruno"], depth=1, limit=4)
    assert exact == whole  # all four fit: nothing was cut


async def test_a_traversal_is_one_statement_per_level_and_its_nested_entities_are_not_refetched(
    api: GraphQLClient, chain: Chain, statements: StatementCounter
) -> None:
    with statements.counting() as sent:
        subgraph = await neighborhood(api, chain.ids["alice"], depth=2)
    assert len(subgraph["nodes"]) == 4
    # Neo4j: the start entity (the authorization check), one statement per level, the edges;
    # the edges' source and target come from what the traversal read.
    assert sent.count("neo4j") == 1 + 2 + 1, sent

    variables = {"from": chain.ids["alice"], "to": chain.ids["dmitri"]}
    with statements.counting() as sent:
        found = (await api.data(PATH, variables, user=OWNER))["path"]
    assert found["length"] == 3
    assert sent.count("neo4j") == 2, sent  # both ends in one batch, then the path


async def test_types_follow_only_the_named_relationship_types(
    api: GraphQLClient, chain: Chain
) -> None:
    every = await neighborhood(api, chain.ids["xavier"])
    assert names(every) == ["Xavier Quinn", "Yolanda Reyes"]
    assert sorted(e["type"] for e in every["edges"]) == ["RELATED_TO", "WORKED_WITH"]

    worked = await neighborhood(api, chain.ids["xavier"], types=["WORKED_WITH"])
    assert names(worked) == ["Xavier Quinn", "Yolanda Reyes"]
    assert [e["type"] for e in worked["edges"]] == ["WORKED_WITH"]

    related = await neighborhood(api, chain.ids["alice"], depth=3, types=["RELATED_TO"])
    assert names(related) == names(await neighborhood(api, chain.ids["alice"], depth=3))

    unknown = await neighborhood(api, chain.ids["alice"], depth=3, types=["MARRIED_TO"])
    assert (names(unknown), unknown["edges"], unknown["truncated"]) == (["Alice Morgan"], [], False)
    none = await neighborhood(api, chain.ids["xavier"], types=[])
    assert (names(none), none["edges"]) == (["Xavier Quinn"], [])


@pytest.mark.parametrize(
    ("field", "arguments", "message"),
    [
        ("neighborhood", {"depth": 4}, "depth must be between 1 and 3"),
        ("neighborhood", {"depth": 0}, "depth must be between 1 and 3"),
        ("neighborhood", {"limit": 0}, "limit must be between 1 and 500"),
        ("neighborhood", {"limit": 501}, "limit must be between 1 and 500"),
        ("neighborhood", {"types": ["A\u0000"]}, "types must not contain control characters"),
        ("neighborhood", {"types": [f"T{i}" for i in range(21)]}, "at most 20"),
        ("path", {"maxDepth": 7}, "maxDepth must be between 1 and 6"),
        ("path", {"maxDepth": 0}, "maxDepth must be between 1 and 6"),
    ],
)
async def test_arguments_out_of_range_are_bad_user_input_for_any_entity(
    api: GraphQLClient, chain: Chain, field: str, arguments: dict[str, Any], message: str
) -> None:
    unknown = str(GlobalID("Entity", str(uuid.uuid4())))
    for entity in (chain.ids["alice"], unknown):
        if field == "neighborhood":
            body = await api.execute(NEIGHBORHOOD, {"id": entity, **arguments}, user=OWNER)
        else:
            ends = {"from": entity, "to": chain.ids["dmitri"]}
            body = await api.execute(PATH, {**ends, **arguments}, user=OWNER)
        assert body["data"] == {field: None}
        assert code(body) == "BAD_USER_INPUT"
        assert message in body["errors"][0]["message"]


async def test_path_is_the_shortest_chain_in_order_with_each_edge_kept_as_it_points(
    api: GraphQLClient, chain: Chain
) -> None:
    people = ["Alice Morgan", "Bruno Castell", "Carla Dumont", "Dmitri Volkov"]
    variables = {"from": chain.ids["alice"], "to": chain.ids["dmitri"]}
    found = (await api.data(PATH, variables, user=OWNER))["path"]
    assert found["length"] == 3 == len(found["edges"])
    assert [node["name"] for node in found["nodes"]] == people
    for i, edge in enumerate(found["edges"]):
        assert {edge["source"]["name"], edge["target"]["name"]} == {people[i], people[i + 1]}
        assert edge["type"] == "RELATED_TO"

    back = {"from": chain.ids["dmitri"], "to": chain.ids["alice"]}
    reverse = (await api.data(PATH, back, user=OWNER))["path"]
    assert [node["name"] for node in reverse["nodes"]] == people[::-1]
    assert reverse["edges"] == found["edges"][::-1]  # the same edges, pointing as they do

    exact = (await api.data(PATH, {**variables, "maxDepth": 3}, user=OWNER))["path"]
    assert exact == found

    itself = {"from": chain.ids["carla"], "to": chain.ids["carla"]}
    alone = (await api.data(PATH, itself, user=OWNER))["path"]
    assert alone == {
        "length": 0,
        "nodes": [{"id": chain.ids["carla"], "name": "Carla Dumont"}],
        "edges": [],
    }


async def test_path_is_null_between_unconnected_entities_or_past_max_depth(
    api: GraphQLClient, chain: Chain
) -> None:
    apart = {"from": chain.ids["alice"], "to": chain.ids["xavier"], "maxDepth": 6}
    assert await api.execute(PATH, apart, user=OWNER) == {"data": {"path": None}}
    too_far = {"from": chain.ids["alice"], "to": chain.ids["dmitri"], "maxDepth": 2}
    assert await api.execute(PATH, too_far, user=OWNER) == {"data": {"path": None}}


async def test_another_users_entity_reads_exactly_like_an_unknown_or_malformed_id(
    api: GraphQLClient, chain: Chain
) -> None:
    unknown = str(GlobalID("Entity", str(uuid.uuid4())))
    wrong_type = str(GlobalID("Domain", chain.raw("alice")))
    malformed = "RW50aXR5Om5vdC1hLXV1aWQ="  # Entity:not-a-uuid
    answers = [
        await api.execute(NEIGHBORHOOD, {"id": chain.ids["alice"]}, user=STRANGER),
        await api.execute(NEIGHBORHOOD, {"id": unknown}, user=STRANGER),
        await api.execute(NEIGHBORHOOD, {"id": unknown}, user=OWNER),
        await api.execute(NEIGHBORHOOD, {"id": wrong_type}, user=OWNER),
        await api.execute(NEIGHBORHOOD, {"id": malformed}, user=OWNER),
        await api.execute(NEIGHBORHOOD, {"id": "not a global id"}, user=OWNER),
    ]
    assert answers == [{"data": {"neighborhood": None}}] * len(answers)

    theirs = {"from": chain.ids["alice"], "to": chain.ids["dmitri"]}
    paths = [
        await api.execute(PATH, theirs, user=STRANGER),
        await api.execute(PATH, {"from": unknown, "to": unknown}, user=STRANGER),
        await api.execute(PATH, {"from": chain.ids["alice"], "to": unknown}, user=OWNER),
        await api.execute(PATH, {"from": wrong_type, "to": chain.ids["dmitri"]}, user=OWNER),
        await api.execute(PATH, {"from": chain.ids["alice"], "to": malformed}, user=OWNER),
    ]
    assert paths == [{"data": {"path": None}}] * len(paths)


async def test_a_viewer_member_traverses_what_the_owner_sees(
    api: GraphQLClient, chain: Chain
) -> None:
    await add_member(api, OWNER, chain.domain, VIEWER, "VIEWER")
    for query, variables in (
        (NEIGHBORHOOD, {"id": chain.ids["carla"], "depth": 2}),
        (PATH, {"from": chain.ids["elena"], "to": chain.ids["dmitri"]}),
    ):
        seen = await api.data(query, variables, user=VIEWER)
        assert seen == await api.data(query, variables, user=OWNER)
        assert next(iter(seen.values())) is not None
