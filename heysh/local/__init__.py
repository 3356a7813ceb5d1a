"""Starting and stopping the local services (Postgres, Neo4j, Weaviate, Temporal) without Docker.

Import from the submodules: ``stack`` (LocalStack), ``services`` (one module per service) and
``install`` (obtaining them). Nothing is imported here, so that commands such as ``heysh token``,
which import ``heysh.local.users``, do not pay for the database clients (about 4 s).
"""
