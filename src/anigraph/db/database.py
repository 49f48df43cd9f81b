"""The database handle: an engine, a session factory and schema creation.

SQLite (the embedded default) runs in WAL mode with a busy timeout so the API threads and the
workers can share it; writes that must not race (task claims) use ``BEGIN IMMEDIATE``.

Other databases (PostgreSQL: ``postgresql+psycopg://…``) get a connection pool sized for the
API threads plus the workers of one machine, checked before use (``pool_pre_ping``: a server
restart or a failover must cost a reconnect, not an error on the next request) and recycled
periodically (proxies and firewalls drop idle connections silently).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

POOL_SIZE = 10
"""Connections kept open per process (server databases only)."""
POOL_OVERFLOW = 20
"""Extra connections opened under load, closed again when returned."""
POOL_RECYCLE_SECONDS = 1800
PRIVATE_FILE_MODE = 0o600
WAL_SWITCH_SECONDS = 30
"""How long a new database's switch to WAL waits for other processes opening it (the busy
timeout's length)."""
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database; they hold its pages too (SecretKeys included)."""

log = logging.getLogger(__name__)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
            _private_sqlite_files(url)
        else:
            options.update(
                pool_pre_ping=True,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                pool_timeout=30,
                pool_recycle=POOL_RECYCLE_SECONDS,
            )
        self.engine: Engine = create_engine(url, **options)
        if self.is_sqlite:
            self._tune_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @staticmethod
    def _tune_sqlite(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling would delay BEGIN; take control of it.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            # IMMEDIATE takes the write lock up front: two claimers never both read "free".
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def create_schema(self) -> None:
        """Bring the schema to the newest migration (creating it in a new database)."""
        from anigraph.db.migrate import upgrade

        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (once: the mode is kept in the file).

    Switching needs the database to itself, and SQLite answers "database is locked" at once,
    without waiting on the busy timeout, when another process is opening it at that moment
    (several machines starting together on a new database): read the mode first, and retry
    the switch for as long as the busy timeout would have waited.
    """
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _private_sqlite_files(url: str) -> None:
    """Create a SQLite database file owner-only (0600) before SQLite does, and tighten one
    (and its WAL, shared-memory and journal files) that exists with more.

    SQLite creates the companion files with the database file's mode, so a private database
    keeps private companions whatever the umask; an empty file is a valid empty database.
    """
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    database = Path(name)
    try:
        descriptor = os.open(database, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    except OSError:
        return  # no such folder, or not ours: SQLite reports it in its own words
    os.close(descriptor)
    for path in (database, *(Path(f"{database}{suffix}") for suffix in SQLITE_COMPANIONS)):
        try:
            current = stat.S_IMODE(path.stat().st_mode)
            if current & 0o077:
                log.info("%s was mode %o; making it %o", path, current, PRIVATE_FILE_MODE)
                path.chmod(PRIVATE_FILE_MODE)
        except FileNotFoundError:
            continue
        except OSError as exc:  # another user's file: say so, the database still opens
            log.warning("cannot make %s private: %s", path, exc)
