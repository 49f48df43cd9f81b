"""Settings: precedence of flags, environment and TOML, and the worker-slot defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from anigraph.settings import Settings, load


def test_flags_beat_environment_beat_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "anigraph.toml"
    config.write_text('port = 7000\nlog_level = "debug"\nlease_seconds = 12.5\n')
    monkeypatch.setenv("ANIGRAPH_PORT", "7100")
    monkeypatch.setenv("ANIGRAPH_WORKERS", "3")
    loaded = load({"port": 7200, "workers": None}, config)
    assert (loaded.port, loaded.workers, loaded.log_level) == (7200, 3, "debug")
    assert loaded.lease_seconds == 12.5


def test_unknown_or_bad_values_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "anigraph.toml"
    config.write_text("no_such_setting = 1\n")
    with pytest.raises(ValueError, match="unknown setting 'no_such_setting'"):
        load(None, config)
    with pytest.raises(ValueError, match="setting port"):
        load({"port": "eighty"})


@pytest.mark.parametrize(
    ("workers", "queue", "serve", "worker"),
    [
        (-1, "", 2, 2),  # one machine: serve runs the workers
        (-1, "redis://redis-host:6379/0", 0, 2),  # scaled out: serve is the API only
        (1, "redis://redis-host:6379/0", 1, 1),  # unless asked for workers
        (0, "", 0, 0),
        (4, "", 4, 4),
    ],
)
def test_worker_slots(workers: int, queue: str, serve: int, worker: int) -> None:
    configured = Settings(workers=workers, queue=queue)
    assert configured.serve_slots == serve
    assert configured.worker_slots == worker
