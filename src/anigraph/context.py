"""What every unit of work needs: settings, the database, the blob store, the clock, the wake-up.

Links to stored objects (output ``Url``, ``FileUrl``, ``MediaUrl``…) are built when they are
read, never trusted from storage: the link mode (``files_url``), the service's ``public_url``
or a presigned URL's expiry may have changed since a task finished. JSON that is stored and
answered later (task results, event payloads) therefore keeps the store key beside each link,
in a hidden ``_UrlKeys`` member (:meth:`Context.linked`), and whoever puts it on the wire
passes it through :meth:`Context.render_urls`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

from anigraph.db.database import Database
from anigraph.settings import PRESIGNED, Settings
from anigraph.storage.base import Store

URL_KEYS: Final = "_UrlKeys"
"""Hidden member of a stored JSON object: ``{member name: store key}`` of its links."""

JSON = TypeVar("JSON")

_PROBE_KEY: Final = "0/output/00000000/presign-check"


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

    def __post_init__(self) -> None:
        if self.settings.files_url == PRESIGNED:
            # Signing is local (no request), so this also catches missing credentials at start
            # instead of on the first response that carries a link.
            try:
                probe = self.store.presigned_url(_PROBE_KEY, 1)
            except Exception as exc:
                raise ValueError(f"files_url 'presigned': the store cannot sign: {exc}") from exc
            if probe is None:
                raise ValueError(f"files_url 'presigned': {self.store!r} has no presigned URLs")

    def now(self) -> datetime:
        return self.clock()

    def file_url(self, key: str) -> str:
        """The link clients download the object ``key`` from, in the configured mode."""
        mode = self.settings.files_url
        if mode == PRESIGNED:
            url = self.store.presigned_url(key, self.settings.presign_seconds)
            if url is None:  # __post_init__ refuses such a store; a swapped-in one is a bug
                raise RuntimeError(f"{self.store!r} cannot presign {key}")
            return url
        if mode:
            return f"{mode.rstrip('/')}/{key}"
        return f"{self.settings.base_url}/files/{key}"

    def linked(self, **members: str | None) -> dict[str, Any]:
        """``{member: link}`` for store keys (``""`` where the key is empty), with the keys
        kept under ``URL_KEYS`` so that :meth:`render_urls` can build the links again."""
        links: dict[str, Any] = {
            name: self.file_url(key) if key else "" for name, key in members.items()
        }
        links[URL_KEYS] = {name: key for name, key in members.items() if key}
        return links

    def render_urls(self, value: JSON) -> JSON:
        """A copy of stored JSON ``value`` with every marked link built now, markers dropped."""
        return cast(JSON, self._render(value))

    def _render(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._render(item) for item in value]
        if not isinstance(value, dict):
            return value
        rendered = {name: self._render(item) for name, item in value.items() if name != URL_KEYS}
        keys = value.get(URL_KEYS)
        if isinstance(keys, dict):
            for name, key in keys.items():
                if isinstance(key, str) and key:
                    rendered[name] = self.file_url(key)
        return rendered
