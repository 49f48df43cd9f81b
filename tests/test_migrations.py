"""The Alembic migrations build exactly the schema of the models; re-running changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from anigraph.db.database import Database
from anigraph.db.migrate import MIGRATIONS, config, current, target_metadata


def test_migrations_match_the_models(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'a.db'}")
    database.create_schema()
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, target_metadata()) == []
    head = ScriptDirectory.from_config(config()).get_current_head()
    assert current(database.engine) == head
    tables = set(inspect(database.engine).get_table_names())
    assert {"tasks", "media", "outbox_events", "upload_sessions", "procedure_templates"} <= tables
    database.create_schema()  # again: nothing to do, nothing fails
    assert current(database.engine) == head
    database.dispose()


def test_migrate_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anigraph", "migrate", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("schema at revision ")
    engine = create_engine(f"sqlite:///{tmp_path / 'd' / 'anigraph.db'}")
    assert "alembic_version" in inspect(engine).get_table_names()
    assert (MIGRATIONS / "versions").is_dir()
