"""Schema migrations with Alembic, run from code: the same path for SQLite and PostgreSQL.

``upgrade(engine)`` brings any database to the newest schema: a new one is built by the
migrations, an existing one is moved forward. ``anigraph migrate`` and every start call it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

MIGRATIONS = Path(__file__).with_name("migrations")


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
    cfg = config()
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        connection.commit()


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
