"""Store helpers of the upload flow: content types, publishing by move, a local copy to probe."""

from __future__ import annotations

import mimetypes
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from anigraph.context import Context
from anigraph.services.uploads.requests import COVER_TYPES


def content_type_of(key: str) -> str:
    """The content type an object is stored with, from its key's extension."""
    suffix = Path(key).suffix.lower()
    known = COVER_TYPES.get(suffix.removeprefix("."))
    if known:
        return known
    return mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"


def move(ctx: Context, source: str, target: str) -> bool:
    """Publish ``source``'s content under ``target`` and remove ``source``; False if it is gone.

    A rename where the store has real files; a streamed copy otherwise.
    """
    store = ctx.store
    path = store.local_path(source)
    try:
        if path is not None:
            store.put_file(target, path, content_type_of(target), move=True)
        else:
            with store.writer(target, content_type_of(target)) as out:
                for chunk in store.open(source):
                    out.write(chunk)
    except FileNotFoundError:
        return False  # nothing (left) to move
    store.delete(source)  # the copy's original, or (after a rename) the metadata left behind
    return True


@contextmanager
def local_file(ctx: Context, key: str) -> Iterator[Path]:
    """A real file with the object's content, for the probe: the store's own file when it has
    one, else a temporary download (deleted afterwards)."""
    path = ctx.store.local_path(key)
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="anigraph-upload-") as folder:
        target = Path(folder) / f"object{Path(key).suffix}"
        with target.open("wb") as out:
            for chunk in ctx.store.open(key):
                out.write(chunk)
        yield target
