"""subscription domainEvents: a domain's changes, from an outbox written with each change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError
from strawberry.relay import GlobalID

from heysh.config import Settings
from heysh.local.users import user_id_for
from tests.support.documents import (
    DELETE,
    active_domain,
    add_document,
    fixture_text,
    wait_document,
)
from tests.support.graphql import GraphQLClient
from tests.support.live_api import serve_api
from tests.support.subscriptions import PROTOCOLS, domain_events, ws_session
from tests.support.tokens import user_token

pytestmark = [pytest.mark.integration, pytest.mark.secure_profile]

OWNER = "dora-domain"
DELETE_DOMAIN = "mutation($id: ID!) { deleteDomain(id: $id) { __typename } }"


@pytest.fixture(scope="module")
async def live(settings: Settings, worker: None) -> AsyncIterator[str]:
    async with serve_api(settings) as url:
        yield url


def token(settings: Settings, user: str) -> str:
    return user_token(settings, user_id_for(user))


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
    return [(e["kind"], e["runKind"], e["status"]) for e in events]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_documents_life_is_announced_in_order_and_resumes_from_any_seq(
    api: GraphQLClient, live: str, settings: Settings, protocol: str
) -> None:
    domain = await active_domain(api, OWNER, f"Announced over {protocol}")
    async with ws_session(live, token(settings, OWNER), protocol) as session:
        watching = asyncio.create_task(
            domain_events(
                session,
                domain,
                until=lambda e: e["kind"] == "RUN_ENDED" and e["runKind"] == "DELETE_DOCUMENT",
            )
        )
        added = await add_document(api, OWNER, domain, "curie", fixture_text("curie.md"))
        document = await wait_document(api, OWNER, added["document"]["id"])
        assert document["status"] == "READY"
        deleted = await api.data(DELETE, {"id": added["document"]["id"]}, user=OWNER)
        assert deleted["deleteDocument"]["__typename"] == "DeleteDocumentSuccess"
        events = await asyncio.wait_for(watching, 120)

    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # The domain's own creation, then the document's life, each change once.
    assert summary(events[:2]) == [
        ("RUN_STARTED", "CREATE_DOMAIN", "RUNNING"),
        ("RUN_ENDED", "CREATE_DOMAIN", "COMPLETED"),
    ]
    about_document = [e for e in events if e["documentId"] == added["document"]["id"]]
    assert summary(about_document) == [
        ("DOCUMENT_ADDED", None, "PENDING"),
        ("RUN_STARTED", "PROCESS_DOCUMENT", "RUNNING"),
        ("DOCUMENT_STATUS_CHANGED", None, "PROCESSING"),
        ("DOCUMENT_STATUS_CHANGED", None, "READY"),
        ("RUN_ENDED", "PROCESS_DOCUMENT", "COMPLETED"),
        ("DOCUMENT_STATUS_CHANGED", None, "DELETING"),
        ("RUN_STARTED", "DELETE_DOCUMENT", "RUNNING"),
        ("DOCUMENT_DELETED", None, "DELETING"),
        ("RUN_ENDED", "DELETE_DOCUMENT", "COMPLETED"),
    ]
    assert {e["runId"] for e in events if e["kind"] == "RUN_STARTED"} >= {
        added["run"]["id"],
        deleted["deleteDocument"]["run"]["id"],
    }

    # Resuming after any seq gives exactly the rest.
    middle = len(events) // 2
    async with ws_session(live, token(settings, OWNER), protocol) as session:
        rest = await domain_events(
            session, domain, after=middle, until=lambda e: e["seq"] == len(events)
        )
    assert rest == events[middle:]


async def test_a_strangers_domain_is_refused_like_an_unknown_one_and_a_deleted_domain_ends_it(
    api: GraphQLClient, live: str, settings: Settings
) -> None:
    domain = await active_domain(api, OWNER, "Watched until deleted")
    unknown = str(GlobalID("Domain", str(uuid.uuid4())))
    errors = []
    for domain_id in (domain, unknown):
        async with ws_session(live, token(settings, "nell-nosy"), PROTOCOLS[0]) as session:
            with pytest.raises(TransportQueryError) as refused:
                await domain_events(session, domain_id)
        errors.append(refused.value.errors)
    assert errors[0] == errors[1]
    assert errors[0][0]["extensions"]["code"] == "NOT_FOUND"

    async with ws_session(live, token(settings, OWNER), PROTOCOLS[0]) as session:
        watching = asyncio.create_task(domain_events(session, domain))
        await asyncio.sleep(1)
        assert (await api.data(DELETE_DOMAIN, {"id": domain}, user=OWNER))["deleteDomain"][
            "__typename"
        ] == "DeleteDomainSuccess"
        with pytest.raises(TransportQueryError) as ended:
            await asyncio.wait_for(watching, 120)
    assert ended.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
