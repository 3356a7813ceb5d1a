"""Text Postgres cannot hold, and control characters in labels, get a clear answer: never a 500.

Content loses its NUL characters (counted in `removedNulCharacters`, hashed as stored); names,
titles and descriptions with control characters or lone surrogates are refused as INVALID_INPUT
naming the field, and nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import psycopg
import pytest

from heysh.local.users import user_id_for
from heysh.services import Services
from tests.support.documents import active_domain, raw_id, wait_document
from tests.support.graphql import GraphQLClient
from tests.support.hostile import error_codes, post_json, post_upload

pytestmark = pytest.mark.integration

USER = "hostile-hana"

ADD = """
mutation($input: AddDocumentInput!) { addDocument(input: $input) {
  __typename
  ... on AddDocumentSuccess { created removedNulCharacters
      document { id contentHash sizeBytes } }
  ... on UserError { code field message } } }
"""
CREATE = """
mutation($input: CreateDomainInput!) { createDomain(input: $input) {
  __typename
  ... on CreateDomainSuccess { domain { id name description } }
  ... on UserError { code field message } } }
"""
TEXT = "Marie Curie studied radium in Paris. Pierre Curie worked with her."
WITH_NULS = "Marie Curie\x00 studied radium in Paris.\x00 Pierre Curie worked with her.\x00"
CONTROL_LABELS = [
    "\x00",
    "Before\x00after",
    "bell\x07",
    "two\nlines",
    "tab\there",
    "delete\x7f",
    "next line\x85",
    "lone \ud800 surrogate",
]


def result(response: Any, field: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"][field]
    return payload


@pytest.fixture(scope="module")
async def domain(api: GraphQLClient) -> str:
    return await active_domain(api, USER, "Hostile input")


async def stored_content(services: Services, document_gid: str) -> str | None:
    async with await psycopg.AsyncConnection.connect(
        services.settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute(
            "select content from heysh.documents where id = %s", (uuid.UUID(raw_id(document_gid)),)
        )
        row = await cur.fetchone()
        return None if row is None else str(row[0])


async def document_count(services: Services, domain_gid: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        services.settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute(
            "select count(*) from heysh.documents where domain_id = %s",
            (uuid.UUID(raw_id(domain_gid)),),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_nul_characters_in_json_content_are_removed_counted_and_hashed_as_stored(
    api: GraphQLClient, services: Services, domain: str
) -> None:
    variables = {"input": {"domainId": domain, "title": "nuls", "content": WITH_NULS}}
    added = result(await post_json(api, ADD, variables, user=USER), "addDocument")
    assert added["__typename"] == "AddDocumentSuccess", added
    assert (added["created"], added["removedNulCharacters"]) == (True, 3)
    stored = TEXT
    assert await stored_content(services, added["document"]["id"]) == stored
    assert added["document"]["contentHash"] == hashlib.sha256(stored.encode()).hexdigest()
    assert added["document"]["sizeBytes"] == len(stored.encode())
    # The stored text is the document: adding it without NULs finds the same one.
    again = {"input": {"domainId": domain, "title": "clean", "content": TEXT}}
    same = result(await post_json(api, ADD, again, user=USER), "addDocument")
    assert (same["created"], same["removedNulCharacters"]) == (False, 0)
    assert same["document"]["id"] == added["document"]["id"]
    document = await wait_document(api, USER, added["document"]["id"])
    assert document["status"] == "READY", document


async def test_nul_characters_in_an_uploaded_file_are_removed_counted_and_hashed_as_stored(
    api: GraphQLClient, services: Services, domain: str
) -> None:
    body = b"\x00Ada Lovelace\x00 wrote the first program for the Analytical Engine."
    stored = body.replace(b"\x00", b"")
    variables = {"input": {"domainId": domain, "title": "upload", "file": None}}
    response = await post_upload(api, ADD, variables, "variables.input.file", body, user=USER)
    added = result(response, "addDocument")
    assert added["__typename"] == "AddDocumentSuccess", added
    assert (added["created"], added["removedNulCharacters"]) == (True, 2)
    assert await stored_content(services, added["document"]["id"]) == stored.decode()
    assert added["document"]["contentHash"] == hashlib.sha256(stored).hexdigest()
    assert added["document"]["sizeBytes"] == len(stored)


@pytest.mark.parametrize("content", ["\x00", "\x00 \x00\n", " \x00\t"])
async def test_content_of_nothing_but_nul_characters_and_spaces_is_empty(
    api: GraphQLClient, services: Services, domain: str, content: str
) -> None:
    before = await document_count(services, domain)
    variables = {"input": {"domainId": domain, "title": "empty", "content": content}}
    refused = result(await post_json(api, ADD, variables, user=USER), "addDocument")
    assert (refused["code"], refused["field"]) == ("CONTENT_EMPTY", "content"), refused
    assert await document_count(services, domain) == before


@pytest.mark.parametrize("title", CONTROL_LABELS)
async def test_titles_with_control_characters_are_refused_and_nothing_is_stored(
    api: GraphQLClient, services: Services, domain: str, title: str
) -> None:
    before = await document_count(services, domain)
    content = f"A fresh text about {title!r} and Lisbon."  # new content, so a row could appear
    variables = {"input": {"domainId": domain, "title": title, "content": content}}
    refused = result(await post_json(api, ADD, variables, user=USER), "addDocument")
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "title"), refused
    assert "control characters" in refused["message"]
    variables["input"] |= {"content": None, "file": None}
    upload = await post_upload(
        api, ADD, variables, "variables.input.file", content.encode(), user=USER
    )
    refused = result(upload, "addDocument")
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "title"), refused
    assert await document_count(services, domain) == before


async def domains_of(services: Services, user: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        services.settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute(
            "select count(*) from heysh.domains where created_by = %s",
            (uuid.UUID(user_id_for(user)),),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.parametrize("name", CONTROL_LABELS)
async def test_domain_names_with_control_characters_are_refused_and_nothing_is_stored(
    api: GraphQLClient, services: Services, name: str
) -> None:
    user = "hostile-nadia"
    before = await domains_of(services, user)
    variables = {"input": {"name": name}}
    refused = result(await post_json(api, CREATE, variables, user=user), "createDomain")
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "name"), refused
    assert "control characters" in refused["message"]
    assert await domains_of(services, user) == before


@pytest.mark.parametrize("description", ["\x00", "nul\x00", "bell\x07", "lone \udfff"])
async def test_domain_descriptions_with_nul_or_control_characters_are_refused(
    api: GraphQLClient, services: Services, description: str
) -> None:
    user = "hostile-dora"
    before = await domains_of(services, user)
    variables = {"input": {"name": "Described", "description": description}}
    refused = result(await post_json(api, CREATE, variables, user=user), "createDomain")
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "description"), refused
    assert await domains_of(services, user) == before


async def test_domain_descriptions_keep_tabs_and_line_breaks(api: GraphQLClient) -> None:
    description = "Line one\r\nline two\n\tindented"
    variables = {"input": {"name": "Multi-line", "description": description}}
    created = result(await post_json(api, CREATE, variables, user=USER), "createDomain")
    assert created["__typename"] == "CreateDomainSuccess", created
    assert created["domain"]["description"] == description


@pytest.mark.parametrize("node_id", [b"\x00", b"run\x00id", b"\xed\xa0\x80", b"\xff"])
async def test_run_ids_postgres_cannot_hold_are_simply_not_found(
    api: GraphQLClient, node_id: bytes
) -> None:
    run_gid = base64.b64encode(b"WorkflowRun:" + node_id).decode()
    query = """query($id: ID!) { workflowRun(id: $id) { id } node(id: $id) { id } }"""
    response = await post_json(api, query, {"id": run_gid}, user=USER)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"workflowRun": None, "node": None}}
    cancel = """mutation($id: ID!) { cancelWorkflowRun(id: $id) {
      ... on UserError { code field } } }"""
    response = await post_json(api, cancel, {"id": run_gid}, user=USER)
    assert error_codes(response.json()) == []
    assert result(response, "cancelWorkflowRun") == {"code": "NOT_FOUND", "field": "id"}


@pytest.mark.parametrize("file", ["plain text", 42, {"read": "x"}, ["a"], True])
async def test_a_file_that_is_not_a_multipart_part_is_refused_and_nothing_is_stored(
    api: GraphQLClient, services: Services, domain: str, file: object
) -> None:
    before = await document_count(services, domain)
    variables = {"input": {"domainId": domain, "title": "not a file", "file": file}}
    refused = result(await post_json(api, ADD, variables, user=USER), "addDocument")
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "file"), refused
    assert await document_count(services, domain) == before
