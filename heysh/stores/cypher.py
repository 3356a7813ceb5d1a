"""Every Cypher statement heysh runs, as constants with ``$params`` (never string-built)."""

CONSTRAINTS = (
    "CREATE CONSTRAINT domain_id IF NOT EXISTS FOR (n:Domain) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT document_id IF NOT EXISTS FOR (n:Document) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT chunk_id IF NOT EXISTS FOR (n:Chunk) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE",
)

PING = "RETURN 1 AS ok"

# MERGE on the unique id makes a retried activity a no-op instead of a duplicate.
MERGE_DOMAIN = """
MERGE (d:Domain {id: $id})
ON CREATE SET d.domain_id = $id, d.name = $name, d.created_at = datetime()
ON MATCH SET d.name = $name
RETURN d.id AS id
"""

DELETE_DOMAIN = """
MATCH (n {domain_id: $id})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 1000 ROWS
"""

COUNT_DOMAIN_NODES = "MATCH (d:Domain {id: $id}) RETURN count(d) AS n"
