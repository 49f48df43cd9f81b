"""Structured logs: one JSON object per line, with RequestId and TaskId when a record has them."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_FIELDS = {"request_id": "RequestId", "task_id": "TaskId", "sub_app_id": "SubAppId"}
_BOUND: ContextVar[dict[str, str] | None] = ContextVar("anigraph_log_fields", default=None)


@contextmanager
def bound(**fields: str) -> Iterator[None]:
    """Every record logged inside (on this thread or task) carries these fields, e.g. task_id."""
    token = _BOUND.set({**(_BOUND.get() or {}), **fields})
    try:
        yield
    finally:
        _BOUND.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _BOUND.get() or {}
        for attribute, name in _FIELDS.items():
            value = getattr(record, attribute, None) or context.get(attribute)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Every request, and Alembic's "setup plugin" lines (seven at each start), would bury what
    # a newcomer needs to see first (the key, the address); the migrations run stay logged.
    for noisy in ("uvicorn.access", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
