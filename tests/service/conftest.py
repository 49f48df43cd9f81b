"""A shared server for the service tests; tests that kill or restart one start their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_harness import Server, Vod, free_port

from media_factory import make_clip


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("service") / "data", free_port())
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def vod(server: Server) -> Vod:
    return Vod(server, server.default_key())


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("clips") / "short.mp4", seconds=2.0, fps=25, width=320, height=180
    )


@pytest.fixture(scope="session")
def file_id(server: Server, short_clip: Path) -> str:
    return server.import_media(short_clip)
