"""Every Cypher statement heysh runs, as constants with ``$params`` (never string-built).

Writes are ``UNWIND $rows ... MERGE`` batches keyed on unique ids, so a retried activity
converges on the same graph instead of duplicating it.
"""

SCHEMA = (
    "CREATE CONSTRAINT domain_id IF NOT EXISTS FOR (n:Domain) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT document_id IF NOT EXISTS FOR (n:Document) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT chunk_id IF NOT EXISTS FOR (n:Chunk) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE",
    "CREATE INDEX chunk_document IF NOT EXISTS FOR (n:Chunk) ON (n.document_id)",
    "CREATE INDEX chunk_domain IF NOT EXISTS FOR (n:Chunk) ON (n.domain_id)",
    "CREATE INDEX document_domain IF NOT EXISTS FOR (n:Document) ON (n.domain_id)",
    "CREATE INDEX entity_domain IF NOT EXISTS FOR (n:Entity) ON (n.domain_id)",
    "CREATE INDEX related_id IF NOT EXISTS FOR ()-[r:RELATED]-() ON (r.id)",
)

PING = "RETURN 1 AS ok"

# --- domains -------------------------------------------------------------------------------------

MERGE_DOMAIN = """
MERGE (d:Domain {id: $id})
ON CREATE SET d.domain_id = $id, d.name = $name, d.created_at = datetime()
ON MATCH SET d.name = $name
RETURN d.id AS id
"""

# One statement per label so each uses its domain_id index; batches keep transactions small.
DELETE_DOMAIN_CHUNKS = """
MATCH (n:Chunk {domain_id: $id})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 2000 ROWS
"""
DELETE_DOMAIN_ENTITIES = """
MATCH (n:Entity {domain_id: $id})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 2000 ROWS
"""
DELETE_DOMAIN_DOCUMENTS = """
MATCH (n:Document {domain_id: $id})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 2000 ROWS
"""
DELETE_DOMAIN_NODE = "MATCH (n:Domain {id: $id}) DETACH DELETE n"

DOMAIN_RELATIONSHIP_WEIGHTS = """
MATCH (:Entity {domain_id: $id})-[r:RELATED]->()
RETURN r.id AS id, r.weight AS weight
"""

DOMAIN_ENTITY_KEYS = """
MATCH (e:Entity {domain_id: $id})
RETURN e.id AS id, e.name AS name, e.type AS type
"""

COUNT_DOMAIN_NODES = "MATCH (d:Domain {id: $id}) RETURN count(d) AS n"

DOMAIN_GRAPH_COUNTS = """
CALL () { MATCH (n:Document {domain_id: $id}) RETURN count(n) AS documents }
CALL () { MATCH (n:Chunk {domain_id: $id}) RETURN count(n) AS chunks }
CALL () { MATCH (n:Entity {domain_id: $id}) RETURN count(n) AS entities }
CALL () {
  MATCH (:Chunk {domain_id: $id})-[m:MENTIONS]->() RETURN count(m) AS mentions
}
CALL () {
  MATCH (:Entity {domain_id: $id})-[r:RELATED]->()
  RETURN count(r) AS relationships, coalesce(sum(r.weight), 0) AS total_weight
}
RETURN documents, chunks, entities, mentions, relationships, total_weight
"""

# --- documents -----------------------------------------------------------------------------------

MERGE_DOCUMENT = """
MATCH (dom:Domain {id: $domain_id})
MERGE (d:Document {id: $id})
ON CREATE SET d.domain_id = $domain_id
SET d.title = $title
MERGE (dom)-[:HAS_DOCUMENT]->(d)
"""

MERGE_CHUNKS = """
MATCH (d:Document {id: $document_id})
UNWIND $rows AS row
MERGE (c:Chunk {id: row.id})
SET c.domain_id = $domain_id, c.document_id = $document_id, c.index = row.index,
    c.start = row.start, c.end = row.end, c.text = row.text
MERGE (d)-[:HAS_CHUNK]->(c)
"""

# An entity is created only with a mention: when the chunks are gone (the document was deleted
# under a late write), the row matches nothing and no orphan entity appears.
MERGE_ENTITIES = """
UNWIND $rows AS row
CALL (row) {
  UNWIND row.chunk_ids AS chunk_id
  MATCH (c:Chunk {id: chunk_id})
  RETURN collect(c) AS found
}
// Filtering the domain here, not in the MATCH, keeps the planner on the unique id index
// (with both predicates it scanned every chunk for each row).
WITH row, [c IN found WHERE c.domain_id = $domain_id] AS chunks
WHERE size(chunks) > 0
MERGE (e:Entity {id: row.id})
ON CREATE SET e.domain_id = $domain_id, e.name = row.name, e.type = row.type,
              e.description = row.description
FOREACH (c IN chunks | MERGE (c)-[:MENTIONS]->(e))
"""

# The weight is the total computed from the evidence rows in Postgres, set absolutely: a retried
# or concurrent write converges on the same value. (`evidence`, a list older graphs carried on the
# edge, is dropped on the way.)
MERGE_RELATIONS = """
UNWIND $rows AS row
MATCH (a:Entity {id: row.source}), (b:Entity {id: row.target})
MERGE (a)-[r:RELATED {type: row.type}]->(b)
ON CREATE SET r.id = row.id
SET r.weight = row.weight
REMOVE r.evidence
"""

# Withdrawing a document: the weight its evidence leaves; a relationship with none left goes.
SET_RELATION_WEIGHTS = """
UNWIND $rows AS row
MATCH (:Entity {id: row.source})-[r:RELATED {type: row.type}]->(:Entity {id: row.target})
SET r.weight = row.weight
REMOVE r.evidence
WITH r WHERE r.weight = 0
DELETE r
"""

DELETE_DOCUMENT_CHUNKS = """
MATCH (c:Chunk {document_id: $id})
CALL (c) { DETACH DELETE c } IN TRANSACTIONS OF 2000 ROWS
"""

DELETE_ORPHAN_ENTITIES = """
UNWIND $entity_ids AS id
MATCH (e:Entity {id: id})
WHERE NOT EXISTS { MATCH (:Chunk)-[:MENTIONS]->(e) }
DETACH DELETE e
RETURN count(*) AS deleted
"""

DELETE_DOCUMENT_NODE = "MATCH (d:Document {id: $id}) DETACH DELETE d"

COUNT_DOCUMENT_CHUNKS = "MATCH (c:Chunk {document_id: $id}) RETURN count(c) AS n"

DOCUMENT_GRAPH = """
MATCH (d:Document {id: $id})
OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
OPTIONAL MATCH (c)-[:MENTIONS]->(e:Entity)
RETURN count(DISTINCT c) AS chunks, count(DISTINCT e) AS entities
"""

# --- reads for the api ----------------------------------------------------------------------------

ENTITIES_BY_ID = """
UNWIND $ids AS id
MATCH (e:Entity {id: id})
RETURN e.id AS id, e.domain_id AS domain_id, e.name AS name, e.type AS type,
       e.description AS description, COUNT { (:Chunk)-[:MENTIONS]->(e) } AS mention_count
"""

CHUNKS_BY_ID = """
UNWIND $ids AS id
MATCH (c:Chunk {id: id})
RETURN c.id AS id, c.domain_id AS domain_id, c.document_id AS document_id, c.index AS index,
       c.start AS start, c.end AS end, c.text AS text
"""

RELATIONSHIPS_BY_ID = """
UNWIND $ids AS id
MATCH (a:Entity)-[r:RELATED {id: id}]->(b:Entity)
RETURN r.id AS id, a.domain_id AS domain_id, r.type AS type, a.id AS source_id,
       b.id AS target_id, r.weight AS weight
"""

ENTITY_DOCUMENTS = """
MATCH (e:Entity {domain_id: $domain_id})
WHERE e.name = $name
MATCH (d:Document)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(e)
RETURN e.id AS id, collect(DISTINCT d.id) AS documents
"""
