"""The worker layer: lease-based task claiming, the runner, the media child and the in-process pool.

The task row in the database is the truth. A worker owns a task only while its lease is valid
and every write it makes is fenced by ownership, so a stalled or resurrected worker can never
overwrite the work of the one that took the task over.
"""
