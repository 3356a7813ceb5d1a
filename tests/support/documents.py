"""Helpers for document tests: create an active domain, add a document, wait for a status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strawberry.relay import GlobalID

from heysh.local.users import user_id_for
from heysh.services import Services
from tests.support.graphql import GraphQLClient, eventually
from tests.support.store_state import tenant_vectors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"

CREATE_DOMAIN = """
mutation($name: String!) { createDomain(input: {name: $name}) {
  ... on CreateDomainSuccess { domain { id } } ... on UserError { code message } } }
"""
DOMAIN_STATUS = "query($id: ID!) { domain(id: $id) { status } }"
ADD = """
mutation($input: AddDocumentInput!) { addDocument(input: $input) {
  __typename
  ... on AddDocumentSuccess { created document { id status } run { id status } }
  ... on UserError { code message field } } }
"""
DOCUMENT = """
query($id: ID!) { document(id: $id) {
  id title status error chunkCount entityCount relationshipCount sizeBytes contentHash
  lastRun { id status stage progress steps { name status done total } }
} }
"""


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def raw_id(global_id: str) -> str:
    return GlobalID.from_id(global_id).node_id


async def active_domain(api: GraphQLClient, user: str, name: str) -> str:
    data = await api.data(CREATE_DOMAIN, {"name": name}, user=user)
    domain_id: str = data["createDomain"]["domain"]["id"]

    async def status() -> Any:
        return (await api.data(DOMAIN_STATUS, {"id": domain_id}, user=user))["domain"]["status"]

    assert await eventually(status, lambda s: s != "CREATING") == "ACTIVE"
    return domain_id


async def add_document(
    api: GraphQLClient, user: str, domain_id: str, title: str, content: str
) -> dict[str, Any]:
    data = await api.data(
        ADD, {"input": {"domainId": domain_id, "title": title, "content": content}}, user=user
    )
    payload: dict[str, Any] = data["addDocument"]
    return payload


async def wait_document(
    api: GraphQLClient, user: str, document_id: str, *, within: float = 180.0
) -> dict[str, Any]:
    async def read() -> Any:
        return (await api.data(DOCUMENT, {"id": document_id}, user=user))["document"]

    def settled(d: Any) -> bool:
        # The run records its last event just after the document's final status (so a
        # subscriber told COMPLETED finds the document READY): wait for both.
        if d is None:
            return True
        run = d["lastRun"]
        return d["status"] in ("READY", "FAILED") and (run is None or run["status"] != "RUNNING")

    document: dict[str, Any] = await eventually(read, settled, within=within)
    return document


DELETE = """
mutation($id: ID!, $dryRun: Boolean) { deleteDocument(id: $id, dryRun: $dryRun) {
  __typename
  ... on DeleteDocumentSuccess { dryRun run { id } impact {
      chunks vectors entitiesDeleted relationshipsDeleted relationshipsWeakened entityNames } }
  ... on UserError { code message } } }
"""
REPROCESS = """
mutation($id: ID!) { reprocessDocument(id: $id) {
  __typename ... on ReprocessDocumentSuccess { run { id } } ... on UserError { code message } } }
"""
CANCEL = """
mutation($id: ID!) { cancelWorkflowRun(id: $id) {
  __typename ... on CancelWorkflowRunSuccess { run { id status } }
  ... on UserError { code message } } }
"""


async def store_counts(services: Services, domain_gid: str) -> dict[str, int]:
    domain_id = raw_id(domain_gid)
    graph = await services.graph.domain_counts(domain_id)
    return {
        "documents": graph.documents,
        "chunks": graph.chunks,
        "entities": graph.entities,
        "mentions": graph.mentions,
        "relationships": graph.relationships,
        "weight": graph.total_weight,
        "vectors": await tenant_vectors(services, domain_id),
    }


async def ready_document(
    api: GraphQLClient, user: str, domain_id: str, name: str
) -> dict[str, Any]:
    added = await add_document(api, user, domain_id, name, fixture_text(name))
    assert added["__typename"] == "AddDocumentSuccess", added
    document = await wait_document(api, user, added["document"]["id"])
    assert document["status"] == "READY", document
    return document


ADD_MEMBER = """
mutation($domainId: ID!, $userId: ID!, $role: MemberRole!) {
  addDomainMember(input: {domainId: $domainId, userId: $userId, role: $role}) { __typename } }
"""


async def add_member(api: GraphQLClient, owner: str, domain_id: str, user: str, role: str) -> None:
    """Give ``user`` a role (OWNER, EDITOR, VIEWER) in the domain, through the API."""
    variables = {"domainId": domain_id, "userId": user_id_for(user), "role": role}
    added = await api.data(ADD_MEMBER, variables, user=owner)
    assert added["addDomainMember"]["__typename"] == "DomainMemberSuccess", added
