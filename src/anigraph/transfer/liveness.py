"""Refusing a source that a running service still uses.

A copy of a live source is wrong in ways nobody notices at once: a task finished after its row
was copied is lost, an upload committed meanwhile points at nothing. Two checks catch what can
be caught without the service's cooperation:

- **SQLite.** Every connection to a database in WAL mode (the service always uses WAL) holds a
  shared POSIX lock on the "dead man switch" byte of the ``-shm`` file for as long as it is open,
  and a running ``serve``/``worker`` keeps pooled connections open. Trying to take that byte
  exclusively, without waiting, therefore fails exactly when another process has the database
  open. The lock is released at once; SQLite itself probes the same byte the same way.
- **Any database.** A claimed task or callback carries a lease that its owner renews while it
  runs; an unexpired lease means a worker or dispatcher is alive (or stopped less than a lease
  ago, in which case waiting that long is the fix).

An idle service on PostgreSQL holds no lease and cannot be seen; the command says so before it
starts, and the rows are read in one snapshot so that at least they agree with each other.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from anigraph.db.database import Database
from anigraph.db.models import Task
from anigraph.db.models_events import OutboxEvent

WAL_DMS_BYTE = 128
"""SQLite's dead-man-switch lock byte in the -shm file: (22 + 8) * 4 + 8 (os_unix.c,
``UNIX_SHM_DMS``)."""


def sqlite_in_use(database_file: Path) -> bool:
    """True if another process has the SQLite database at ``database_file`` open.

    Must run before this process opens the database itself: POSIX locks belong to the process,
    so closing the probe's descriptor would drop the locks of this process's own connections.
    """
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no probe, only the lease check
        return False
    try:
        descriptor = os.open(f"{database_file}-shm", os.O_RDWR)
    except FileNotFoundError:
        return False  # no shared-memory file: nobody has had the database open since
    try:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, WAL_DMS_BYTE, os.SEEK_SET)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return True
            raise
        fcntl.lockf(descriptor, fcntl.LOCK_UN, 1, WAL_DMS_BYTE, os.SEEK_SET)
        return False
    finally:
        os.close(descriptor)


def live_lease(database: Database, now: datetime | None = None) -> str | None:
    """A description of an unexpired task or callback lease, or ``None`` if there is none."""
    moment = now or datetime.now(UTC)
    with database.session() as session:
        task_until = session.scalar(
            select(func.max(Task.lease_expires_at)).where(Task.lease_owner.is_not(None))
        )
        event_until = session.scalar(
            select(func.max(OutboxEvent.lease_until)).where(OutboxEvent.lease_owner.is_not(None))
        )
    for what, until in (("a task", task_until), ("a callback", event_until)):
        if until is not None and until > moment:
            return f"{what} is leased by a running worker until {until.isoformat()}"
    return None
