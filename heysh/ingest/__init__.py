"""`heysh ingest PATH... --domain ID`: upload text files through the public GraphQL API and
follow each document's run live, one progress bar (or, without a terminal, plain lines) each.

Only the public contract is used: `addDocument` with a multipart upload over HTTP, then
`subscription workflowRun(id, after)` over WebSocket, resumed with `after` when the socket drops,
then `document(id)` for the summary. Ctrl-C stops new uploads, lets the ones in flight finish (so
no run is started unseen), cancels every run this command started that has not ended, and exits
with 130.

The parts: `files` finds the files and reads their titles, `client` talks to the api (HTTP and
WebSocket), `document` is one file's way through, `display` shows it, and `command` runs it all
(`heysh.cli` calls `command.ingest_command`).
"""
