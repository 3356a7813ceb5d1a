-- Documents and the intermediate results of their processing pipeline. Workflows pass ids only;
-- activities keep bulky intermediate data (chunk text, vectors, extractions) here, so workflow
-- history stays small for any document size and a retried stage never recomputes earlier ones.

create type heysh.document_status as enum ('PENDING', 'PROCESSING', 'READY', 'FAILED', 'DELETING');

create table heysh.documents (
    id uuid primary key,
    domain_id uuid not null references heysh.domains (id) on delete cascade,
    title text not null check (char_length(btrim(title)) between 1 and 500),
    content text not null,
    content_hash text not null,
    size_bytes bigint not null,
    status heysh.document_status not null default 'PENDING',
    error text,
    chunk_count integer,
    entity_count integer,
    relationship_count integer,
    created_by uuid not null,
    created_at timestamptz not null default now(),
    processed_at timestamptz,
    updated_at timestamptz not null default now(),
    unique (domain_id, content_hash)
);
create index documents_domain_idx on heysh.documents (domain_id, created_at desc);

create table heysh.chunks (
    document_id uuid not null references heysh.documents (id) on delete cascade,
    chunk_index integer not null,
    id uuid not null unique,
    start_offset integer not null,
    end_offset integer not null,
    token_count integer not null,
    text text not null,
    embedding real[],
    extraction jsonb,
    primary key (document_id, chunk_index)
);

-- The resolved graph of one document, written to Neo4j in UNWIND batches by the graph stage.
create table heysh.document_entities (
    document_id uuid not null references heysh.documents (id) on delete cascade,
    entity_id uuid not null,
    name text not null,
    type text not null,
    description text,
    chunk_ids uuid[] not null,
    primary key (document_id, entity_id)
);

create table heysh.document_relations (
    document_id uuid not null references heysh.documents (id) on delete cascade,
    source_id uuid not null,
    target_id uuid not null,
    type text not null,
    evidence uuid[] not null,
    primary key (document_id, source_id, target_id, type)
);

alter table heysh.documents enable row level security;
alter table heysh.chunks enable row level security;
alter table heysh.document_entities enable row level security;
alter table heysh.document_relations enable row level security;
