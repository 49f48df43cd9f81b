"""The data folder and the SQLite files hold every SecretKey: owner-only, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from anigraph import settings as settings_module
from anigraph.server import ensure_default_key, open_context

DB_FILES = ("anigraph.db", "anigraph.db-wal", "anigraph.db-shm")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: files and folders come out as their creator asks."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_new_data_folder_and_database_are_private(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    ctx = open_context(settings_module.load({"data_dir": data}))
    try:
        ensure_default_key(ctx)  # writes a SecretKey: the WAL and its index exist now
        assert mode(data) == 0o700
        for name in DB_FILES:
            assert mode(data / name) == 0o600, name
    finally:
        ctx.db.dispose()


def test_existing_files_are_tightened_on_start(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    ctx = open_context(settings_module.load({"data_dir": data}))
    ensure_default_key(ctx)
    # Left open as an older version (or a careless copy) left them, with the WAL still there.
    data.chmod(0o755)
    for name in DB_FILES:
        (data / name).chmod(0o644)
    ctx.db.dispose()
    for name in DB_FILES[1:]:  # SQLite removes the WAL at a clean close; a crash keeps it
        (data / name).touch()
        (data / name).chmod(0o644)

    again = open_context(settings_module.load({"data_dir": data}))
    try:
        assert mode(data) == 0o700
        for name in DB_FILES:
            assert mode(data / name) == 0o600, name
    finally:
        again.db.dispose()
