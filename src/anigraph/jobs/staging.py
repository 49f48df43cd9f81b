"""The workers' scratch folder: outputs and downloads before the store takes them."""

from __future__ import annotations

import time
from pathlib import Path

from anigraph.context import Context


def staging_dir(ctx: Context) -> Path:
    """Scratch folder for engine outputs, beside the store so that ``move=True`` is a rename."""
    path = (ctx.settings.data_dir / "staging").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sweep_staging(ctx: Context, older_than: float) -> int:
    """Delete scratch files older than ``older_than`` seconds; how many were removed.

    A job's files live at most its deadline plus the kill grace, so anything much older was left
    by a process that died (the parent is SIGKILLed too, or the machine lost power).
    """
    limit = time.time() - older_than
    removed = 0
    for path in staging_dir(ctx).iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process swept it first
            continue
    return removed
