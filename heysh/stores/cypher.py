"""Every Cypher statement heysh runs, as constants with ``$params`` (never string-built).

Writes are ``UNWIND $rows ... MERGE`` batches keyed on unique ids, so a retried activity
converges on the same graph instead of duplicating it.
"""

from typing import LiteralString

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

# --- reads for the api ----------------------------------------------------------------------------
# Only chunks mention entities, so a mention count is the degree `COUNT { ()-[:MENTIONS]->(e) }`,
# which Neo4j reads from the node's degree store instead of visiting every chunk.

ENTITIES_BY_ID = """
UNWIND $ids AS id
CALL (id) { MATCH (e:Entity {id: id}) RETURN e }
WITH e WHERE e.domain_id IN $domains
RETURN e.id AS id, e.domain_id AS domain_id, e.name AS name, e.type AS type,
       e.description AS description, COUNT { ()-[:MENTIONS]->(e) } AS mention_count
"""

CHUNKS_BY_ID = """
UNWIND $ids AS id
CALL (id) { MATCH (c:Chunk {id: id}) RETURN c }
WITH c WHERE c.domain_id IN $domains
RETURN c.id AS id, c.domain_id AS domain_id, c.document_id AS document_id, c.index AS index,
       c.start AS start, c.end AS end, c.text AS text
"""

RELATIONSHIPS_BY_ID = """
UNWIND $ids AS id
MATCH (a:Entity)-[r:RELATED]->(b:Entity) USING INDEX r:RELATED(id)
WHERE r.id = id AND a.domain_id IN $domains
RETURN r.id AS id, a.domain_id AS domain_id, r.type AS type, a.id AS source_id,
       b.id AS target_id, r.weight AS weight
"""

ENTITY_DOCUMENTS = """
MATCH (e:Entity {domain_id: $domain_id})
WHERE e.name = $name
MATCH (d:Document)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(e)
RETURN e.id AS id, collect(DISTINCT d.id) AS documents
"""

# --- pages of relation fields ---------------------------------------------------------------
# Each finds its parent through the parent's own index (USING INDEX) and expands from it in a
# pattern comprehension. Written as plain MATCH patterns, the planner read every entity of the
# domain in name order (to spare the sort) and joined back to the parent (PROFILE showed it);
# `x.domain_id + '' = ...` keeps the child's domain check a filter, not an index seek to join.
# One row per parent holding its page as a list: the Python driver spends far longer building a
# record than the server spends finding a row (400 parents: 37 ms as lists, 150 ms as rows).
# Each reads one page for many parents in one statement: $pages holds {pos, parent, domain, after}
# per parent, and every node matched carries the parent's domain_id. Order and keyset condition
# match the key type the store names (NameKey, ChunkKey, WeightKey).


def _pages(var: LiteralString, label: LiteralString, key: LiteralString) -> LiteralString:
    """The head of a page statement whose parent is found by ``label``'s index on ``key`` (for
    a document, its chunks by theirs on ``document_id``) as ``var``, in the page's domain."""
    return f"""
UNWIND $pages AS page
CALL (page) {{
  MATCH ({var}:{label}) USING INDEX {var}:{label}({key})
  WHERE {var}.{key} = page.parent AND {var}.domain_id = page.domain
"""


# The entities of each page, as `e`, by name, then id.
_ENTITY_PAGE = """
  WITH DISTINCT page, e
  WHERE page.after IS NULL OR e.name > page.after.name
     OR (e.name = page.after.name AND e.id > page.after.id)
  RETURN e ORDER BY e.name, e.id LIMIT $fetch
}
RETURN page.pos AS pos, collect({id: e.id, domain_id: e.domain_id, name: e.name, type: e.type,
       description: e.description, mention_count: COUNT { ()-[:MENTIONS]->(e) }}) AS rows
"""

# The entities the chunks `c` mention, as `e`.
_MENTIONED = """
  UNWIND [(c)-[:MENTIONS]->(e:Entity) WHERE e.domain_id + '' = page.domain | e] AS e
"""

DOMAIN_ENTITY_PAGES = (
    """
UNWIND $pages AS page
CALL (page) {
  MATCH (e:Entity {domain_id: page.domain})
  WHERE ($type IS NULL OR e.type = $type)
    AND ($name_contains IS NULL OR toLower(e.name) CONTAINS $name_contains)
"""
    + _ENTITY_PAGE
)

DOCUMENT_ENTITY_PAGES = _pages("c", "Chunk", "document_id") + _MENTIONED + _ENTITY_PAGE

CHUNK_ENTITY_PAGES = _pages("c", "Chunk", "id") + _MENTIONED + _ENTITY_PAGE

ENTITY_NEIGHBOR_PAGES = (
    _pages("a", "Entity", "id")
    + """
  UNWIND [(a)-[:RELATED]-(e:Entity) WHERE e.domain_id + '' = page.domain | e] AS e
"""
    + _ENTITY_PAGE
)

# The chunks `c` of each page, by document, then position in it.
_CHUNK_PAGE = """
  WITH page, c
  WHERE page.after IS NULL OR c.document_id > page.after.document_id
     OR (c.document_id = page.after.document_id AND c.index > page.after.index)
  RETURN c ORDER BY c.document_id, c.index LIMIT $fetch
}
RETURN page.pos AS pos, collect(c {.id, .domain_id, .document_id, .index, .start, .end, .text})
       AS rows
"""

DOCUMENT_CHUNK_PAGES = _pages("c", "Chunk", "document_id") + _CHUNK_PAGE

ENTITY_MENTION_PAGES = (
    _pages("e", "Entity", "id")
    + """
  UNWIND [(c:Chunk)-[:MENTIONS]->(e) WHERE c.domain_id + '' = page.domain | c] AS c
"""
    + _CHUNK_PAGE
)

# Heaviest first; $direction is OUT, IN or BOTH, $types null for every type.
ENTITY_RELATIONSHIP_PAGES = (
    _pages("e", "Entity", "id")
    + """
  UNWIND [(e)-[r:RELATED]-(o:Entity) WHERE o.domain_id + '' = page.domain
          AND ($direction = 'BOTH' OR ($direction = 'OUT') = (startNode(r) = e))
          AND ($types IS NULL OR r.type IN $types) | r] AS r
  WITH page, r WHERE (page.after IS NULL OR r.weight < page.after.weight
         OR (r.weight = page.after.weight AND r.id > page.after.id))
  RETURN r ORDER BY r.weight DESC, r.id LIMIT $fetch
}
RETURN page.pos AS pos, collect({id: r.id, domain_id: page.domain, type: r.type,
       source_id: startNode(r).id, target_id: endNode(r).id, weight: r.weight}) AS rows
"""
)

DOMAIN_GRAPH_STATS = """
UNWIND $ids AS id
CALL (id) { MATCH (n:Chunk {domain_id: id}) RETURN count(n) AS chunks }
CALL (id) { MATCH (n:Entity {domain_id: id}) RETURN count(n) AS entities }
CALL (id) { MATCH (:Entity {domain_id: id})-[r:RELATED]->() RETURN count(r) AS relationships }
RETURN id, chunks, entities, relationships
"""

# --- traversals ----------------------------------------------------------------------------------
# Bounded in work, not only in result size: every expansion has its LIMIT inside the statement,
# every MATCH carries the domain, and the store runs them under the read timeout.

# One breadth-first level of a neighbourhood: from each frontier entity its $take heaviest unseen
# neighbours (a neighbour counted once, by its heaviest edge), then the $take heaviest of those.
# Taking $take from each entity first keeps the rows bounded by frontier x $take, and it cannot
# change the answer: a neighbour in the overall top $take is in its heaviest edge's list too.
NEIGHBORHOOD_LEVEL = """
UNWIND $frontier AS frontier_id
MATCH (a:Entity {id: frontier_id, domain_id: $domain_id})
CALL (a) {
  MATCH (a)-[r:RELATED]-(b:Entity {domain_id: $domain_id})
  WHERE NOT b.id IN $seen AND ($types IS NULL OR r.type IN $types)
  WITH b, max(r.weight) AS weight
  ORDER BY weight DESC, b.id
  LIMIT $take
  RETURN b, weight
}
WITH b, max(weight) AS weight
ORDER BY weight DESC, b.id
LIMIT $take
RETURN b.id AS id, b.domain_id AS domain_id, b.name AS name, b.type AS type,
       b.description AS description, COUNT { ()-[:MENTIONS]->(b) } AS mention_count
"""

# The edges among a neighbourhood's entities ($ids; $levels maps each to its breadth-first level),
# each read once from its source: edges of the earliest levels first, then heavier, then by id.
# Each source gives at most $take, which (as above) cannot change the overall first $take.
NEIGHBORHOOD_EDGES = """
UNWIND $ids AS source_id
MATCH (a:Entity {id: source_id, domain_id: $domain_id})
CALL (a) {
  MATCH (a)-[r:RELATED]->(b:Entity {domain_id: $domain_id})
  WHERE b.id IN $ids AND ($types IS NULL OR r.type IN $types)
  WITH r, b, CASE WHEN $levels[a.id] > $levels[b.id] THEN $levels[a.id]
                  ELSE $levels[b.id] END AS level
  ORDER BY level, r.weight DESC, r.id
  LIMIT $take
  RETURN r, b, level
}
WITH a, r, b, level
ORDER BY level, r.weight DESC, r.id
LIMIT $take
RETURN r.id AS id, $domain_id AS domain_id, r.type AS type, a.id AS source_id,
       b.id AS target_id, r.weight AS weight
"""

# The shortest path of RELATED edges, either way, inside the domain. The bound is literal (a
# shortestPath's length cannot be a parameter); a path longer than $max_depth is dropped after.
SHORTEST_PATH = """
MATCH (a:Entity {id: $from_id, domain_id: $domain_id}),
      (b:Entity {id: $to_id, domain_id: $domain_id})
MATCH p = shortestPath((a)-[:RELATED*1..6]-(b))
WHERE all(n IN nodes(p) WHERE n.domain_id = $domain_id)
WITH p
WHERE length(p) <= $max_depth
UNWIND range(0, length(p)) AS i
WITH i, nodes(p)[i] AS n, CASE WHEN i < length(p) THEN relationships(p)[i] END AS r
RETURN n.id AS id, n.domain_id AS domain_id, n.name AS name, n.type AS type,
       n.description AS description, COUNT { ()-[:MENTIONS]->(n) } AS mention_count,
       r.id AS edge_id, r.type AS edge_type, r.weight AS edge_weight,
       startNode(r).id AS edge_source, endNode(r).id AS edge_target
ORDER BY i
"""

# --- search -------------------------------------------------------------------------------------

# Each chunk `c` of the domain among $ids and, as `e` inside its CALL, up to $max_entities of the
# entities it mentions, by name. A chunk the graph does not hold (its document still being
# written) yields no row.
_HIT_CHUNKS = """
UNWIND $ids AS id
MATCH (c:Chunk {id: id})
WHERE c.domain_id = $domain_id
CALL (c) {
  UNWIND [(c)-[:MENTIONS]->(e:Entity) WHERE e.domain_id + '' = $domain_id | e] AS e
  WITH e ORDER BY e.name, e.id
  LIMIT $max_entities
"""

# The hits of a search joined to the graph in one statement.
SEARCH_HITS = (
    _HIT_CHUNKS
    + """  RETURN collect(e { .id, .domain_id, .name, .type, .description,
                     mention_count: COUNT { ()-[:MENTIONS]->(e) } }) AS entities
}
RETURN c.id AS id, c.domain_id AS domain_id, c.document_id AS document_id, c.index AS index,
       c.start AS start, c.end AS end, c.text AS text, entities
"""
)

# GRAPH mode's candidates in one statement: one row holding the chunks (each with the ids of up
# to $max_entities entities it mentions, by name) and every entity they mention once, with its
# degree in the domain and those of its neighbours that the candidates also mention.
SEARCH_GRAPH_CANDIDATES = (
    _HIT_CHUNKS
    + """  RETURN collect(e) AS mentioned
}
WITH collect(c { .id, .domain_id, .document_id, .index, .start, .end, .text,
                 entity_ids: [e IN mentioned | e.id] }) AS chunks,
     collect(mentioned) AS lists
CALL (lists) {
  UNWIND lists AS list
  UNWIND list AS e
  WITH DISTINCT e
  RETURN collect(e) AS entities
}
WITH chunks, entities, [e IN entities | e.id] AS candidate_ids
RETURN chunks, [e IN entities | e { .id, .domain_id, .name, .type, .description,
    mention_count: COUNT { ()-[:MENTIONS]->(e) },
    degree: COUNT { (e)-[:RELATED]-(:Entity {domain_id: $domain_id}) },
    neighbour_ids: [(e)-[:RELATED]-(n:Entity {domain_id: $domain_id})
                    WHERE n.id IN candidate_ids | n.id] }] AS entities
"""
)
