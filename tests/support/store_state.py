"""What the databases hold, read for assertions over connections of the test's own.

heysh itself never reads these figures, so they are not store methods: each helper queries the
database it inspects directly, apart from the stores (and their pools) under test.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, LiteralString

import psycopg
from psycopg.rows import class_row

from heysh.services import Services, weaviate_client
from heysh.stores.graph import create_driver
from heysh.stores.postgres import DomainRow
from heysh.stores.vectors import tenant_name


async def _postgres(services: Services, sql: str, params: tuple[Any, ...]) -> list[Any]:
    url = services.settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def _neo4j(services: Services, query: LiteralString, **params: Any) -> list[Any]:
    settings = services.settings
    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
    driver = create_driver(
        settings.neo4j_uri, settings.neo4j_user, password, ca_file=settings.tls_ca_file
    )
    try:
        records, _, _ = await driver.execute_query(query, params, database_=settings.neo4j_database)
    finally:
        await driver.close()
    return list(records)


# --- Postgres ------------------------------------------------------------------------------------


async def domain_row(services: Services, domain_id: uuid.UUID) -> DomainRow | None:
    """The domain's row, whoever may read it; None once it is deleted."""
    columns = ", ".join(f.name for f in dataclasses.fields(DomainRow))
    url = services.settings.database_url.get_secret_value()
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        conn.cursor(row_factory=class_row(DomainRow)) as cur,
    ):
        await cur.execute(f"select {columns} from heysh.domains where id = %s", (domain_id,))
        return await cur.fetchone()


async def document_ids(services: Services, domain_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await _postgres(
        services, "select id from heysh.documents where domain_id = %s", (domain_id,)
    )
    return [row[0] for row in rows]


async def chunk_count(services: Services, document_id: uuid.UUID) -> int:
    """The document's chunk rows (the pipeline's first intermediates)."""
    rows = await _postgres(
        services, "select count(*) from heysh.chunks where document_id = %s", (document_id,)
    )
    return int(rows[0][0])


# --- Neo4j ---------------------------------------------------------------------------------------


async def domain_nodes(services: Services, domain_id: str) -> int:
    """How many Domain nodes have this id (0 or 1)."""
    records = await _neo4j(
        services, "MATCH (d:Domain {id: $id}) RETURN count(d) AS n", id=domain_id
    )
    return int(records[0]["n"])


async def entity_keys(services: Services, domain_id: str) -> list[tuple[str, str, str]]:
    """(id, name, type) of every entity of the domain."""
    records = await _neo4j(
        services,
        "MATCH (e:Entity {domain_id: $id}) RETURN e.id AS id, e.name AS name, e.type AS type",
        id=domain_id,
    )
    return [(r["id"], r["name"], r["type"]) for r in records]


async def relationship_weights(services: Services, domain_id: str) -> dict[str, int]:
    """Every relationship of the domain by id, with its weight."""
    records = await _neo4j(
        services,
        "MATCH (:Entity {domain_id: $id})-[r:RELATED]->() RETURN r.id AS id, r.weight AS weight",
        id=domain_id,
    )
    return {r["id"]: int(r["weight"]) for r in records}


# --- Weaviate ------------------------------------------------------------------------------------


async def tenant_vectors(services: Services, domain_id: str) -> int:
    """The vectors in the domain's tenant; 0 when it has none."""
    settings = services.settings
    client = weaviate_client(settings)
    try:
        await client.connect()
        collection = client.collections.use(settings.weaviate_collection)
        name = tenant_name(domain_id)
        if not await collection.tenants.exists(name):
            return 0
        result = await collection.with_tenant(name).aggregate.over_all(total_count=True)
        return int(result.total_count or 0)
    finally:
        await client.close()
