"""/graphql speaks the GraphQL over HTTP spec: media types, status codes, error bodies."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from heysh.auth import mint_dev_token
from heysh.config import Settings
from heysh.local.users import user_id_for
from tests.support.graphql import GraphQLClient, gateway
from tests.support.live_api import serve_api

pytestmark = pytest.mark.integration

AUDIT_DIR = Path(__file__).resolve().parents[1] / "http_audit"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
PARSE_ERROR = "{"
VALIDATION_ERROR = "{ noSuchField }"
COERCION_ERROR = "query Q($id: ID!) { domain(id: $id) { id } }"


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """The gateway with no worker: nothing here starts a workflow."""
    async with gateway(settings) as opened:
        yield opened


async def post(
    client: GraphQLClient,
    body: object,
    *,
    accept: str | None,
    user: str | None = "http-spec",
    content: bytes | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    if user is not None:
        headers["Authorization"] = f"Bearer {client.token(user)}"
    raw = content if content is not None else json.dumps(body).encode()
    request = client.http.build_request("POST", "/graphql", content=raw, headers=headers)
    if accept is None:
        del request.headers["Accept"]  # httpx sends */* unless told otherwise
    return await client.http.send(request)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


async def test_graphql_response_json_is_answered_when_the_client_asks_for_it(
    client: GraphQLClient,
) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 200, response.text
    assert media_type(response) == GRAPHQL_RESPONSE_JSON
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON};q=0.5", "application/json"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (None, "application/json"),
    ],
)
async def test_the_response_media_type_follows_the_accept_header(
    client: GraphQLClient, accept: str | None, expected: str
) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept=accept)
    assert response.status_code == 200, response.text
    assert media_type(response) == expected


@pytest.mark.parametrize(
    ("query", "variables"),
    [(PARSE_ERROR, None), (VALIDATION_ERROR, None), (COERCION_ERROR, {"id": None})],
    ids=["parse", "validation", "variable-coercion"],
)
async def test_request_errors_are_400_without_data_for_graphql_response_json(
    client: GraphQLClient, query: str, variables: dict[str, Any] | None
) -> None:
    body = {"query": query, "variables": variables}
    response = await post(client, body, accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400, response.text
    assert media_type(response) == GRAPHQL_RESPONSE_JSON
    answer = response.json()
    assert "data" not in answer
    assert error_codes(answer) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [(PARSE_ERROR, None), (VALIDATION_ERROR, None), (COERCION_ERROR, {"id": None})],
    ids=["parse", "validation", "variable-coercion"],
)
@pytest.mark.parametrize("accept", ["application/json", "*/*"])
async def test_request_errors_stay_200_with_null_data_for_application_json(
    client: GraphQLClient, query: str, variables: dict[str, Any] | None, accept: str
) -> None:
    response = await post(client, {"query": query, "variables": variables}, accept=accept)
    assert response.status_code == 200, response.text
    assert media_type(response) == "application/json"
    answer = response.json()
    assert answer["data"] is None
    assert error_codes(answer) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_an_execution_error_keeps_data_and_200_for_graphql_response_json(
    client: GraphQLClient,
) -> None:
    # The operation ran: `domains` failed, so the spec wants `data` (null here) and a 2xx.
    response = await post(
        client,
        {"query": "{ domains(first: -1) { edges { cursor } } }"},
        accept=GRAPHQL_RESPONSE_JSON,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "data" in answer
    assert answer["data"] is None
    assert error_codes(answer) == ["BAD_USER_INPUT"]


async def test_unauthenticated_is_401_without_data_for_graphql_response_json(
    client: GraphQLClient,
) -> None:
    response = await post(
        client, {"query": "{ viewer { id } }"}, accept=GRAPHQL_RESPONSE_JSON, user=None
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    answer = response.json()
    assert "data" not in answer
    assert error_codes(answer) == ["UNAUTHENTICATED"]


async def test_unauthenticated_stays_200_with_null_data_for_application_json(
    client: GraphQLClient,
) -> None:
    response = await post(
        client, {"query": "{ viewer { id } }"}, accept="application/json", user=None
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] is None
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


async def test_the_test_client_still_gets_json_for_its_default_accept(
    client: GraphQLClient,
) -> None:
    # tests/support/graphql.py sends httpx's `Accept: */*` and asserts 200: the rest of the suite
    # relies on that, errors included.
    body = await client.execute(VALIDATION_ERROR, user="http-spec")
    assert body["data"] is None
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize("raw", [b"null", b"1", b'"x"', b"[]", b"true"])
@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE_JSON])
async def test_a_json_body_that_is_not_an_object_is_a_400_graphql_error(
    client: GraphQLClient, raw: bytes, accept: str
) -> None:
    response = await post(client, None, accept=accept, content=raw)
    assert response.status_code == 400, response.text
    assert media_type(response) == accept
    answer = response.json()
    assert "data" not in answer
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "JSON object" in error["message"]


@pytest.mark.parametrize(
    ("operations", "files_map", "field"),
    [("null", "{}", "operations"), ('{"query": "{ __typename }"}', "1", "map")],
)
async def test_a_multipart_field_that_is_not_a_json_object_is_a_400_graphql_error(
    client: GraphQLClient, operations: str, files_map: str, field: str
) -> None:
    response = await client.http.post(
        "/graphql",
        data={"operations": operations, "map": files_map},
        files={"0": ("notes.txt", b"text")},
        headers={"Authorization": f"Bearer {client.token('http-spec')}"},
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert f"`{field}` must be a JSON object" in error["message"]


async def test_a_body_that_is_not_json_is_a_400_graphql_error(client: GraphQLClient) -> None:
    response = await post(client, None, accept="application/json", content=b'{ "not json')
    assert response.status_code == 400, response.text
    assert error_codes(response.json()) == ["BAD_REQUEST"]


async def test_a_mutation_over_get_is_405(client: GraphQLClient) -> None:
    response = await client.http.get(
        "/graphql",
        params={"query": 'mutation { deleteDomain(id: "x") { __typename } }'},
        headers={"Accept": GRAPHQL_RESPONSE_JSON},
    )
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert error_codes(response.json()) == ["METHOD_NOT_ALLOWED"]


async def test_an_accept_header_without_a_json_type_is_406(client: GraphQLClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept="text/csv")
    assert response.status_code == 406, response.text
    assert media_type(response) == "application/json"
    assert error_codes(response.json()) == ["NOT_ACCEPTABLE"]


async def test_graphql_http_server_audit_passes_every_check(settings: Settings) -> None:
    script = AUDIT_DIR / "audit.mjs"
    assert (AUDIT_DIR / "node_modules" / "graphql-http").is_dir(), (
        "graphql-http is not installed: run scripts/bootstrap.sh (npm ci in tests/http_audit)"
    )
    token = mint_dev_token(settings, user_id_for("http-audit"))
    env = {**os.environ, "AUDIT_AUTHORIZATION": f"Bearer {token}"}
    async with serve_api(settings) as url:
        node = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            url,
            cwd=AUDIT_DIR,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(node.communicate(), timeout=120)
        finally:
            if node.returncode is None:  # timed out: leave no node process behind
                node.kill()
                await node.wait()
    assert node.returncode == 0, stderr.decode()
    results = json.loads(stdout)
    failing = [f"{r['id']} {r['name']}: {r['reason']}" for r in results if r["status"] != "ok"]
    passed = len(results) - len(failing)
    assert not failing, f"graphql-http audit: {passed}/{len(results)} ok; failing:\n" + "\n".join(
        failing
    )
    assert len(results) == 61
