-- heysh metadata lives in its own schema with row level security on, so Supabase's Data API
-- roles (anon, authenticated) cannot reach it even with the publishable key. The api and worker
-- connect as the owner of these tables, which row level security does not restrict.

create schema if not exists heysh;
revoke all on schema heysh from public;

create type heysh.domain_status as enum ('CREATING', 'ACTIVE', 'FAILED', 'DELETING');
create type heysh.member_role as enum ('owner', 'editor', 'viewer');

create table heysh.domains (
    id uuid primary key,
    name text not null check (char_length(btrim(name)) between 1 and 200),
    description text not null default '',
    status heysh.domain_status not null default 'CREATING',
    error text,
    created_by uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- user_id is a Supabase auth.users id (the JWT sub); nothing else about users is copied.
create table heysh.domain_members (
    domain_id uuid not null references heysh.domains (id) on delete cascade,
    user_id uuid not null,
    role heysh.member_role not null,
    created_at timestamptz not null default now(),
    primary key (domain_id, user_id)
);
create index domain_members_user_idx on heysh.domain_members (user_id, domain_id);

-- One row per Temporal workflow the api started: lets access checks on a run be one SQL join,
-- while the run's live state stays in the workflow itself.
create table heysh.workflow_runs (
    id text primary key,
    domain_id uuid not null references heysh.domains (id) on delete cascade,
    kind text not null,
    subject_id uuid,
    started_by uuid not null,
    created_at timestamptz not null default now()
);
create index workflow_runs_domain_idx on heysh.workflow_runs (domain_id, created_at desc);

alter table heysh.domains enable row level security;
alter table heysh.domain_members enable row level security;
alter table heysh.workflow_runs enable row level security;
