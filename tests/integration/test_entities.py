"""Reading entities: by id and as nodes, only inside the caller's domains."""

from __future__ import annotations

import uuid

import pytest
from strawberry.relay import GlobalID

from heysh.services import Services
from tests.support.documents import active_domain, raw_id, ready_document
from tests.support.graphql import GraphQLClient
from tests.support.store_state import entity_keys

pytestmark = pytest.mark.integration

ENTITY = """
query($id: ID!) { entity(id: $id) { id name type mentionCount domain { id } } }
"""
NODE = "query($id: ID!) { node(id: $id) { id ... on Entity { name type } } }"


async def mentions_in_journal(services: Services, document_ids: list[str], entity: str) -> int:
    total = 0
    for document_id in document_ids:
        async for page in services.journal.entity_pages(uuid.UUID(document_id), 500):
            total += sum(len(e.chunk_ids) for e in page if str(e.entity_id) == entity)
    return total


async def test_an_entity_named_in_two_documents_reads_as_one_with_all_its_mentions(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "erin", "Entities")
    curie = await ready_document(api, "erin", domain, "curie.md")
    einstein = await ready_document(api, "erin", domain, "einstein.md")
    keys = await entity_keys(services, raw_id(domain))
    (marie,) = [key for key, name, type_ in keys if (name, type_) == ("Marie Curie", "PERSON")]
    entity_id = str(GlobalID("Entity", marie))

    found = (await api.data(ENTITY, {"id": entity_id}, user="erin"))["entity"]
    assert (found["id"], found["name"], found["type"]) == (entity_id, "Marie Curie", "PERSON")
    assert found["domain"]["id"] == domain
    expected = await mentions_in_journal(
        services, [raw_id(curie["id"]), raw_id(einstein["id"])], marie
    )
    assert found["mentionCount"] == expected
    assert expected >= 2  # both documents mention her

    node = (await api.data(NODE, {"id": entity_id}, user="erin"))["node"]
    assert node == {"id": entity_id, "name": "Marie Curie", "type": "PERSON"}


async def test_another_domains_entity_reads_exactly_like_an_unknown_one(
    api: GraphQLClient, services: Services
) -> None:
    domain = await active_domain(api, "erin", "Private entities")
    await ready_document(api, "erin", domain, "einstein.md")
    (some, *_) = await entity_keys(services, raw_id(domain))
    theirs = str(GlobalID("Entity", some[0]))
    unknown = str(GlobalID("Entity", str(uuid.uuid4())))

    for query, field in ((ENTITY, "entity"), (NODE, "node")):
        stranger = await api.execute(query, {"id": theirs}, user="stan-stranger")
        nobody = await api.execute(query, {"id": unknown}, user="stan-stranger")
        assert stranger == nobody == {"data": {field: None}}
    malformed = await api.execute(ENTITY, {"id": "RW50aXR5Om5vdC1hLXV1aWQ="}, user="erin")
    assert malformed == {"data": {"entity": None}}
