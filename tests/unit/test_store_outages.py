"""Which client errors count as a store outage (STORE_UNAVAILABLE, retried) and which do not."""

from __future__ import annotations

import httpx
import pytest
from weaviate.exceptions import UnexpectedStatusCodeError

from heysh.stores.outages import store_outage


def weaviate_answered(status: int) -> UnexpectedStatusCodeError:
    request = httpx.Request("GET", "https://weaviate.example.test/v1/schema/Chunk/tenants")
    return UnexpectedStatusCodeError("Could not check", httpx.Response(status, request=request))


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_answering_for_a_down_weaviate_is_a_vector_store_outage(status: int) -> None:
    # Weaviate Cloud's load balancer, or the secure profile's TLS proxy, with Weaviate down.
    outage = store_outage(weaviate_answered(status))
    assert outage is not None
    assert "vector store is temporarily unavailable" in str(outage)


@pytest.mark.parametrize("status", [400, 401, 404, 422, 500])
def test_weaviate_refusing_or_failing_a_request_is_no_outage(status: int) -> None:
    assert store_outage(weaviate_answered(status)) is None
