"""A request body over the gateway's cap (2 x max_document_bytes + 1 MB) gets 413 PAYLOAD_TOO_LARGE.

Declared (Content-Length) or streamed (chunked, no length), the body is refused before it is read
to the end, and nothing is stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from heysh.services import Services
from tests.support.documents import ADD, active_domain, raw_id
from tests.support.graphql import GraphQLClient, gateway

pytestmark = pytest.mark.integration

USER = "limit-lena"
MAX_DOCUMENT_BYTES = 1000
LIMIT = 2 * MAX_DOCUMENT_BYTES + 1024 * 1024  # as heysh/app.py sets it
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
async def domain(api: GraphQLClient) -> str:
    return await active_domain(api, USER, "Body limit")


@pytest.fixture(scope="module")
async def small(api: GraphQLClient) -> AsyncIterator[GraphQLClient]:
    settings = api.settings.model_copy(update={"max_document_bytes": MAX_DOCUMENT_BYTES})
    async with gateway(settings) as client:
        yield client


def add_body(domain: str, size: int) -> bytes:
    """An addDocument request body of exactly ``size`` bytes."""

    def body(content_length: int) -> bytes:
        variables = {"input": {"domainId": domain, "title": "big", "content": "x" * content_length}}
        return json.dumps({"query": ADD, "variables": variables}).encode()

    overhead = len(body(0))
    assert size >= overhead
    return body(size - overhead)


class Streamed:
    """A chunked request body that records how much of it the server pulled."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < len(self.body):
            chunk = self.body[self.sent : self.sent + CHUNK]
            self.sent += len(chunk)
            yield chunk


async def documents_in(services: Services, domain: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        services.settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute(
            "select count(*) from heysh.documents where domain_id = %s",
            (uuid.UUID(raw_id(domain)),),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


def assert_payload_too_large(response: Any) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {
        "errors": [
            {
                "message": f"request body exceeds {LIMIT} bytes",
                "extensions": {"code": "PAYLOAD_TOO_LARGE"},
            }
        ]
    }


async def test_a_body_of_exactly_the_limit_is_read_and_answered_by_graphql(
    small: GraphQLClient, domain: str
) -> None:
    response = await small.http.post(
        "/graphql",
        content=add_body(domain, LIMIT),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {small.token(USER)}",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["addDocument"]["code"] == "CONTENT_TOO_LARGE"


async def test_a_declared_body_over_the_limit_gets_413_and_stores_nothing(
    small: GraphQLClient, services: Services, domain: str
) -> None:
    before = await documents_in(services, domain)
    body = add_body(domain, LIMIT + 1)
    response = await small.http.post(
        "/graphql",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {small.token(USER)}",
        },
    )
    assert response.request.headers["content-length"] == str(LIMIT + 1)
    assert_payload_too_large(response)
    assert await documents_in(services, domain) == before


async def test_a_chunked_body_over_the_limit_gets_413_before_it_is_read_to_the_end(
    small: GraphQLClient, services: Services, domain: str
) -> None:
    before = await documents_in(services, domain)
    stream = Streamed(add_body(domain, 4 * LIMIT))
    response = await small.http.post(
        "/graphql",
        content=stream,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {small.token(USER)}",
        },
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_payload_too_large(response)
    assert LIMIT < stream.sent <= LIMIT + CHUNK  # refused at the first chunk past the limit
    assert await documents_in(services, domain) == before


async def test_a_chunked_multipart_upload_over_the_limit_gets_413_and_stores_nothing(
    small: GraphQLClient, services: Services, domain: str
) -> None:
    before = await documents_in(services, domain)
    boundary = "heysh-limit-boundary"
    operations = json.dumps(
        {"query": ADD, "variables": {"input": {"domainId": domain, "title": "f", "file": None}}}
    )
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        '{"0": ["variables.input.file"]}\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n",
    ]
    body = "".join(parts).encode() + b"y" * (2 * LIMIT) + f"\r\n--{boundary}--\r\n".encode()
    stream = Streamed(body)
    response = await small.http.post(
        "/graphql",
        content=stream,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": f"Bearer {small.token(USER)}",
        },
    )
    assert "content-length" not in response.request.headers
    assert_payload_too_large(response)
    assert stream.sent < len(body)
    assert await documents_in(services, domain) == before
