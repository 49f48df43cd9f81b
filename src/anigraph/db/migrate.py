"""Schema migrations with Alembic, run from code: the same path for SQLite and PostgreSQL.

``upgrade(engine)`` brings any database to the newest schema: a new one is built by the
migrations, an existing one is moved forward. ``anigraph migrate`` and every start call it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, text

MIGRATIONS = Path(__file__).with_name("migrations")

_LOCK = threading.Lock()
"""Alembic's ``context`` and ``op`` are module globals: one migration run per process at a time."""
ADVISORY_LOCK: Final = 0x616E6967  # "anig": PostgreSQL advisory lock key of schema changes


def target_metadata() -> MetaData:
    from anigraph.db import (  # noqa: F401  (each module adds its tables)
        models_events,
        models_procedures,
        models_upload_signatures,
        models_uploads,
    )
    from anigraph.db.models import Base

    return Base.metadata


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision``; safe when several threads or machines start at once.

    On PostgreSQL a transaction-scoped advisory lock serialises machines: the second one reads
    the version table only after the first committed (DDL is transactional there), so it finds
    nothing left to do. SQLite needs no extra lock: its first statement runs in a
    ``BEGIN IMMEDIATE`` transaction, which already admits one writer at a time.
    """
    cfg = config()
    with _LOCK, engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        connection.commit()


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
