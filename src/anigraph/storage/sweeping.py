"""Removing the files that a write killed mid-way leaves behind (``Store.sweep_leftovers``).

A process killed with -9, or a machine that loses power, runs no cleanup: the local store's
hidden temp files and the S3 store's spool files stay. They are told apart from live writes by
age: a file nobody has written to since ``cutoff`` belongs to a write that is over.

Safe with several sweepers at once: a name is random per write and never reused, and a file
another sweeper removed first is simply skipped.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("anigraph.storage")


def remove_stale_files(folder: Path, name: re.Pattern[str], cutoff: float, *, walk: bool) -> int:
    """Delete regular files named like ``name`` last modified before ``cutoff`` (epoch
    seconds), in ``folder`` (and, with ``walk``, its subfolders); how many were deleted.

    Only matching names are stat'ed, so a walk of a large store costs its directory reads.
    Symlinked folders are not followed, so the walk stays inside ``folder``.
    """
    listing: Iterable[tuple[Path, list[str]]] = (
        ((Path(path), names) for path, _, names in os.walk(folder))
        if walk
        else [(folder, _names(folder))]
    )
    removed = 0
    for current, names in listing:
        for file_name in names:
            if name.fullmatch(file_name) is None:
                continue
            path = current / file_name
            try:
                status = path.lstat()
                if not stat.S_ISREG(status.st_mode) or status.st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:  # another sweeper, or the write finished meanwhile
                continue
            except OSError as exc:
                log.warning("cannot remove leftover %s: %s", path, exc)
                continue
            removed += 1
    return removed


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
