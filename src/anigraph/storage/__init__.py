"""Blob stores: where sources, uploads and produced animations live.

``Store`` is the interface; ``LocalStore`` (files under a folder) is the embedded default.
Keys are always chosen by the store (``Store.new_key``) and checked by every method.
"""

from __future__ import annotations

from anigraph.storage.base import (
    CHUNK_SIZE,
    ListedObject,
    Store,
    StoredObject,
    validate_content_type,
)
from anigraph.storage.keys import InvalidKey, new_key, validate_key
from anigraph.storage.local import LocalStore

__all__ = [
    "CHUNK_SIZE",
    "InvalidKey",
    "ListedObject",
    "LocalStore",
    "Store",
    "StoredObject",
    "new_key",
    "validate_content_type",
    "validate_key",
]
