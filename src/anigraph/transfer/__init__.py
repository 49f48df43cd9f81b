"""``anigraph migrate-store``: move one setup's rows and objects to another database and store.

The typical move is from the embedded default (SQLite and files under ``--data-dir``) to the
scaled setup (PostgreSQL and S3), but any pair works, and either half may move alone.

- ``opening``: turning URLs into databases and stores, with one-line errors for bad input;
- ``liveness``: refusing a source that a running service still uses;
- ``tables``: the schema's tables in dependency order, copied in batches by primary key;
- ``sequences``: PostgreSQL counters moved past the copied keys;
- ``objects``: store objects copied by key, streamed and verified;
- ``references``: which columns hold store keys, and the keys the rows point at;
- ``migration``: the plan (what would move) and its execution, in a resumable order.
"""
