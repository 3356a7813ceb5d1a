-- A relationship's weight is the number of chunks, across the domain's documents, that state it.
-- The evidence lives here, one row per (document, relationship), where it can be paginated, and
-- the graph keeps only the sum: these indexes serve that sum and the "what else mentions this
-- entity" questions a delete asks.
create index if not exists document_relations_key_idx
    on heysh.document_relations (source_id, target_id, type);
create index if not exists document_entities_entity_idx
    on heysh.document_entities (entity_id);
