-- A document's or domain's latest run (PostgresStore.latest_runs: `distinct on (subject_id) ...
-- where subject_id = any(...) order by subject_id, created_at desc`) is read on every
-- `lastRun` field. Without this index that is a scan of every run ever recorded.
create index if not exists workflow_runs_subject_idx
    on heysh.workflow_runs (subject_id, created_at desc);
