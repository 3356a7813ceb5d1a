"""Large documents through addDocument: long activities heartbeat, and work is paged."""

from __future__ import annotations

import random
import uuid

import pytest

from heysh.config import Settings
from heysh.services import Services
from heysh.worker import build_document_activities, build_worker
from tests.support.documents import active_domain, add_document, store_counts, wait_document
from tests.support.embedders import HashEmbedder
from tests.support.graphql import gateway

pytestmark = pytest.mark.integration

_SYLLABLES = (
    [
        "Al",
        "Bren",
        "Cor",
        "Dav",
        "El",
        "Fen",
        "Gar",
        "Hal",
        "Is",
        "Jor",
        "Kel",
        "Lor",
        "Mar",
        "Nor",
        "Or",
        "Per",
        "Quin",
        "Ros",
        "Sel",
        "Tor",
    ],
    ["a", "e", "i", "o", "u", "ae", "io", "ou"],
    ["dric", "vin", "mont", "wyn", "sell", "rick", "bert", "ford", "ton", "vard"],
)
_PLACES = ["Lisbon", "Vienna", "Krakow", "Porto", "Geneva", "Oslo", "Tallinn", "Dublin"]


def people_document(size_bytes: int, people: int, seed: int = 7) -> str:
    """Prose about ``people`` distinct invented people, at least ``size_bytes`` long."""
    rnd = random.Random(seed)

    def word() -> str:
        return "".join(rnd.choice(part) for part in _SYLLABLES)

    names = sorted({f"{word()} {word()}" for _ in range(people * 2)})[:people]
    sentences: list[str] = []
    size = 0
    while size < size_bytes:
        a, b = rnd.sample(names, 2)
        sentence = f"{a} met {b} in {rnd.choice(_PLACES)}."
        sentences.append(sentence)
        size += len(sentence) + 1
        if len(sentences) % 6 == 0:
            sentences.append("\n\n")
    return " ".join(sentences)


async def test_a_megabyte_with_thousands_of_entities_becomes_ready(
    settings: Settings, services: Services
) -> None:
    queue = f"large-{uuid.uuid4().hex[:8]}"
    text = people_document(1_100_000, people=4000)
    assert len(text.encode()) >= 1_000_000
    activities = build_document_activities(services, embedder=HashEmbedder())
    async with (
        gateway(settings.model_copy(update={"task_queue": queue})) as api,
        build_worker(services, task_queue=queue, documents=activities),
    ):
        domain = await active_domain(api, "lena", "Large")
        added = await add_document(api, "lena", domain, "people", text)
        assert added["__typename"] == "AddDocumentSuccess", added
        document = await wait_document(api, "lena", added["document"]["id"], within=900)
    assert document["status"] == "READY", document
    assert document["entityCount"] >= 3000
    counts = await store_counts(services, domain)
    assert counts["entities"] == document["entityCount"]
    assert counts["chunks"] == counts["vectors"] == document["chunkCount"]
    assert counts["relationships"] == document["relationshipCount"]
