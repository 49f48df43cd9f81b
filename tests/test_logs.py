"""Structured logs: JSON lines carrying RequestId / TaskId from the record or the bound context."""

from __future__ import annotations

import json
import logging

import pytest

from anigraph.db.database import Database
from anigraph.logs import JsonFormatter, bound, configure


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


def test_a_start_logs_the_migrations_run_but_not_alembics_plugin_setup(
    capfd: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure("info")
        Database("sqlite://").create_schema()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    messages = [json.loads(line)["message"] for line in capfd.readouterr().err.splitlines()]
    assert any(message.startswith("Running upgrade") for message in messages)
    assert [message for message in messages if "setup plugin" in message] == []
