"""Structured logs: JSON lines carrying RequestId / TaskId from the record or the bound context."""

from __future__ import annotations

import json
import logging

from anigraph.logs import JsonFormatter, bound


def render(record: logging.LogRecord) -> dict[str, object]:
    return dict(json.loads(JsonFormatter().format(record)))


def make(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("anigraph.t", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_fields_from_record_and_context() -> None:
    assert "TaskId" not in render(make("plain"))
    with bound(task_id="1-procedurev2-ab"):
        entry = render(make("inside", request_id="r-1"))
    assert entry["TaskId"] == "1-procedurev2-ab" and entry["RequestId"] == "r-1"
    assert entry["message"] == "inside" and entry["level"] == "info"
    assert "TaskId" not in render(make("after"))
