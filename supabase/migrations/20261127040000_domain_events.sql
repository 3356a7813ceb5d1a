-- An outbox of what happens in a domain, for `subscription domainEvents`: a document added,
-- changing status or deleted, a run started or ended. Triggers write each event in the same
-- transaction as the change it describes, whichever code path makes it, so no change is missed
-- and none is announced without happening. `seq` counts per domain without gaps: writers take
-- the domain's counter row in turn, so events commit in `seq` order.
create table heysh.domain_events (
    domain_id uuid not null,
    seq bigint not null,
    kind text not null,
    document_id uuid,
    run_id text,
    run_kind text,
    status text,
    at timestamptz not null default now(),
    primary key (domain_id, seq)
);

create table heysh.domain_event_counters (
    domain_id uuid primary key,
    last_seq bigint not null
);

alter table heysh.domain_events enable row level security;
alter table heysh.domain_event_counters enable row level security;

create function heysh.record_domain_event(
    p_domain_id uuid, p_kind text, p_document_id uuid, p_run_id text, p_run_kind text,
    p_status text
) returns void language plpgsql as $$
declare
    next_seq bigint;
begin
    -- A domain being deleted (its row already gone in this transaction) announces nothing more
    -- for the documents its delete cascades to.
    if not exists (select 1 from heysh.domains where id = p_domain_id) then
        return;
    end if;
    insert into heysh.domain_event_counters as c (domain_id, last_seq) values (p_domain_id, 1)
    on conflict (domain_id) do update set last_seq = c.last_seq + 1
    returning last_seq into next_seq;
    insert into heysh.domain_events (domain_id, seq, kind, document_id, run_id, run_kind, status)
    values (p_domain_id, next_seq, p_kind, p_document_id, p_run_id, p_run_kind, p_status);
    perform pg_notify('heysh_domain_events', p_domain_id::text || ' ' || next_seq::text);
end;
$$;

create function heysh.document_events() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        perform heysh.record_domain_event(
            new.domain_id, 'DOCUMENT_ADDED', new.id, null, null, new.status::text);
    elsif tg_op = 'UPDATE' then
        perform heysh.record_domain_event(
            new.domain_id, 'DOCUMENT_STATUS_CHANGED', new.id, null, null, new.status::text);
    else
        perform heysh.record_domain_event(
            old.domain_id, 'DOCUMENT_DELETED', old.id, null, null, old.status::text);
    end if;
    return null;
end;
$$;

create trigger documents_added after insert on heysh.documents
    for each row execute function heysh.document_events();
create trigger documents_status_changed after update of status on heysh.documents
    for each row when (old.status is distinct from new.status)
    execute function heysh.document_events();
create trigger documents_deleted after delete on heysh.documents
    for each row execute function heysh.document_events();

create function heysh.run_events_for_domain() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        perform heysh.record_domain_event(new.domain_id, 'RUN_STARTED',
            case when new.subject_id <> new.domain_id then new.subject_id end,
            new.id, new.kind, 'RUNNING');
    else
        perform heysh.record_domain_event(new.domain_id, 'RUN_ENDED',
            case when new.subject_id <> new.domain_id then new.subject_id end,
            new.id, new.kind, new.status);
    end if;
    return null;
end;
$$;

create trigger runs_started after insert on heysh.workflow_runs
    for each row execute function heysh.run_events_for_domain();
create trigger runs_ended after update of status on heysh.workflow_runs
    for each row when (new.status in ('COMPLETED', 'FAILED', 'CANCELED')
                       and old.status is distinct from new.status)
    execute function heysh.run_events_for_domain();
