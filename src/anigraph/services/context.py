"""What every use case needs: settings, the database, the blob store and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from anigraph.db.database import Database
from anigraph.settings import Settings
from anigraph.storage.base import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    db: Database
    store: Store
    clock: Callable[[], datetime] = field(default=utc_now)
    # Called after a task is committed, so an idle worker starts at once instead of polling.
    wake_workers: Callable[[], None] = field(default=lambda: None)

    def now(self) -> datetime:
        return self.clock()

    def file_url(self, key: str) -> str:
        return f"{self.settings.base_url}/files/{key}"
