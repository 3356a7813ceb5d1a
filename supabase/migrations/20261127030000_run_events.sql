-- Run progress gets a durable home in Postgres: the workflows append events (run_id, seq) through
-- an idempotent activity and keep a snapshot of the run on workflow_runs, so every read of a
-- run (workflowRun, lastRun, subscriptions) is a Postgres read and no Temporal call.
--
-- Runs outlive the deletes they record: deleting a domain no longer deletes its runs (the
-- deleteDomain run itself must stay readable, COMPLETED, after its domain is gone).
alter table heysh.workflow_runs drop constraint if exists workflow_runs_domain_id_fkey;

alter table heysh.workflow_runs
    add column status text,
    add column stage text,
    add column progress real not null default 0,
    add column steps jsonb not null default '[]'::jsonb,
    add column error text,
    add column started_at timestamptz,
    add column finished_at timestamptz,
    add column last_seq integer not null default 0;

create table heysh.run_events (
    run_id text not null references heysh.workflow_runs (id) on delete cascade,
    seq integer not null check (seq > 0),
    stage text not null,
    status text not null,
    progress real not null,
    message text not null,
    at timestamptz not null,
    primary key (run_id, seq)
);

alter table heysh.run_events enable row level security;
