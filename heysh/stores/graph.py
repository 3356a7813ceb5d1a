"""The knowledge graph in Neo4j. All Cypher comes from ``heysh.stores.cypher``."""

from __future__ import annotations

from typing import LiteralString

from neo4j import AsyncDriver, AsyncGraphDatabase, RoutingControl

from heysh.stores import cypher


def create_driver(uri: str, user: str, password: str | None) -> AsyncDriver:
    auth = (user, password) if password else None
    return AsyncGraphDatabase.driver(uri, auth=auth)


class GraphStore:
    def __init__(self, driver: AsyncDriver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database

    async def ping(self) -> None:
        await self._driver.execute_query(cypher.PING, database_=self._database)

    async def ensure_schema(self) -> None:
        for statement in cypher.CONSTRAINTS:
            await self._driver.execute_query(statement, database_=self._database)

    async def merge_domain(self, domain_id: str, name: str) -> None:
        await self._write(cypher.MERGE_DOMAIN, id=domain_id, name=name)

    async def delete_domain(self, domain_id: str) -> None:
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction.
        async with self._driver.session(database=self._database) as session:
            result = await session.run(cypher.DELETE_DOMAIN, id=domain_id)
            await result.consume()

    async def count_domain_nodes(self, domain_id: str) -> int:
        records, _, _ = await self._driver.execute_query(
            cypher.COUNT_DOMAIN_NODES,
            id=domain_id,
            database_=self._database,
            routing_=RoutingControl.READ,
        )
        return int(records[0]["n"])

    async def _write(self, query: LiteralString, **params: object) -> None:
        await self._driver.execute_query(query, params, database_=self._database)
