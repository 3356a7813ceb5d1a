-- rebuildGraph holds a domain in REBUILDING while it re-resolves every document's entities and
-- rewrites the graph; adds, reprocesses and deletes of documents wait until it is ACTIVE again.
alter type heysh.domain_status add value if not exists 'REBUILDING';
