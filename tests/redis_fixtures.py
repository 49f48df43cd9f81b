"""A real redis-server for the tests, started from the Debian package (``redis-server``).

Loaded with ``pytest_plugins = ["redis_fixtures"]``. ``redis_server`` (session scope) runs one
server on a free loopback port with persistence off; ``RedisServer.restart`` stops it and starts
it again on the same port (what the chaos tests need: the clients keep their URL), and
``RedisServer.frozen`` makes it hang without closing anything. Without the
binary the tests skip with the reason, unless ``CI`` is set: then they fail, so a CI that forgot
to install Redis cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REDIS_BINARY = shutil.which("redis-server")
START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on ``127.0.0.1:port`` (no persistence: a restart empties it)."""

    def __init__(self, binary: str, directory: Path, port: int) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.database_url(0)

    def database_url(self, index: int) -> str:
        """The URL of logical database ``index`` (0-15): one server, isolated queues."""
        return f"redis://127.0.0.1:{self.port}/{index}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not _pong(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        process.wait(10)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped with SIGSTOP for the block: connections are accepted by the
        kernel but nothing is ever answered, like a hung server or a network that drops
        packets (a refused connection would be the easy case)."""
        assert self._process is not None, "not running"
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    def restart(self, down_seconds: float = 0.0, kill: bool = False) -> None:
        """Stop the server (SIGKILL with ``kill``), stay down ``down_seconds``, start it again."""
        self.stop(kill=kill)
        time.sleep(down_seconds)
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS_BINARY is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required when CI is set (apt-get install redis-server)")
        pytest.skip("redis-server not installed (Debian package redis-server)")
    server = RedisServer(REDIS_BINARY, tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
