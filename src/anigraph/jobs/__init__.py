"""The worker layer: lease-based task claiming, the runner, the in-process pool, the Celery
transport, and the hooks that write ProcedureStateChanged with a task's state change.

Workers drive the use cases as the API does (a PullUpload creates a media item and starts its
task flow through ``anigraph.services``); the services reach workers only through
``Context.wake_workers``, which the composition root sets.

The task row in the database is the truth. A worker owns a task only while its lease is valid
and every write it makes is fenced by ownership, so a stalled or resurrected worker can never
overwrite the work of the one that took the task over.
"""
