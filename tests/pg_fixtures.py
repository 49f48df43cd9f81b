"""A real PostgreSQL server for the tests, started from the Debian packages (``postgresql``).

``postgres_url`` (session scope) runs ``initdb`` and ``postgres`` in a fresh temp folder on a
free loopback port, creates the database ``anigraph`` and yields its SQLAlchemy URL
(``postgresql+psycopg://…``); the server is shut down and its folder removed at the end.
:func:`fresh_database` makes one more empty database on that server and drops it afterwards.
:func:`restartable_postgres` runs a private server that can be stopped and started again on the
same port and data folder (the chaos tests restart it under running services).

PostgreSQL refuses to run as root: under root the server runs as the ``postgres`` system user
(which the Debian package creates) and owns the temp folder. Without the binaries (or psycopg)
the tests skip with the reason, unless ``CI`` is set: then they fail, so a CI that forgot to
install PostgreSQL cannot pass by skipping.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVER_USER = "postgres"
DATABASE = "anigraph"
START_TIMEOUT = 60.0
SERVER_TIMEZONE = "Asia/Shanghai"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}")
    pytest.skip(reason)


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding initdb and postgres (or $PG_BINDIR)."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _RunAs:
    """How to run a server binary: as ourselves, or (under root) as the postgres user."""

    user: str | None
    uid: int = -1
    gid: int = -1

    def options(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.uid, self.gid)


def _run_as() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs(None)
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        _unavailable(f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL")
        raise  # unreachable: _unavailable raises
    return _RunAs(SERVER_USER, entry.pw_uid, entry.pw_gid)


def _admin_connect(port: int, dbname: str = "postgres") -> Any:
    import psycopg

    return psycopg.connect(
        host="127.0.0.1", port=port, user=SERVER_USER, dbname=dbname, autocommit=True
    )


@dataclass(frozen=True)
class PostgresServer:
    port: int
    base: Path

    def url(self, dbname: str = DATABASE) -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        with _admin_connect(self.port) as connection:
            connection.execute(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)

    def drop_database(self, dbname: str) -> None:
        with _admin_connect(self.port) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def _initdb(bindir: Path, run_as: _RunAs) -> Path:
    """A new cluster in a new temp folder (``<base>/data``); the folder is returned."""
    # Not under pytest's tmp folders: those are 0700 root, which the postgres user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="anigraph-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    for path in (base, sockets):
        run_as.own(path)
    log = base / "initdb.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=base,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
            **run_as.options(),
        )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}):\n{log.read_text()}")
    return base


def _launch(
    bindir: Path, run_as: _RunAs, base: Path, port: int, log_name: str
) -> subprocess.Popen[bytes] | None:
    """Run ``postgres`` on the cluster in ``base``; the process once it accepts connections,
    ``None`` if it exited or did not answer in time (most likely: the port was taken)."""
    server_log = (base / log_name).open("wb")
    process = subprocess.Popen(
        [
            str(bindir / "postgres"),
            "-D",
            str(base / "data"),
            "-p",
            str(port),
            "-k",
            str(base / "run"),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=200",
            # Not UTC on purpose: what the database hands back must not depend on the
            # server's zone (values come back aware, in UTC).
            "-c",
            f"TimeZone={SERVER_TIMEZONE}",
            # A throwaway server: durability buys nothing, speed does.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        cwd=base,
        stdout=server_log,
        stderr=subprocess.STDOUT,
        **run_as.options(),
    )
    server_log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with _admin_connect(port):
                return process
        except Exception:
            time.sleep(0.1)
    _stop(process)
    return None


def _start(bindir: Path, run_as: _RunAs) -> tuple[PostgresServer, subprocess.Popen[bytes]]:
    base = _initdb(bindir, run_as)
    for attempt in range(5):
        port = free_port()
        process = _launch(bindir, run_as, base, port, f"postgres-{attempt}.log")
        if process is not None:
            return PostgresServer(port, base), process
        # Most likely the port was taken between free_port() and the bind: try another.
    logs = "\n".join(path.read_text(errors="replace") for path in base.glob("postgres-*.log"))
    raise RuntimeError(f"PostgreSQL did not start:\n{logs}")


def _stop(process: subprocess.Popen[bytes], *, immediate: bool = False) -> None:
    if process.poll() is not None:
        return
    # SIGINT is the "fast" shutdown (disconnect clients, checkpoint, stop cleanly); SIGQUIT the
    # "immediate" one (no checkpoint: the next start runs crash recovery, like after a crash).
    process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _require_postgres() -> tuple[Path, _RunAs]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    bindir = find_bindir()
    if bindir is None:
        _unavailable("PostgreSQL binaries not found (apt-get install postgresql)")
        raise AssertionError("unreachable")
    return bindir, _run_as()


class RestartablePostgres:
    """A private PostgreSQL server that can be stopped and started again on the same port and
    data folder, so clients keep their URL and find their data (the chaos tests).

    Private because a restart breaks every open connection: the session server stays untouched.
    """

    def __init__(self, bindir: Path, run_as: _RunAs) -> None:
        self._bindir = bindir
        self._run_as = run_as
        self.server, process = _start(bindir, run_as)
        self._process: subprocess.Popen[bytes] | None = process
        self._starts = 1

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, *, immediate: bool = False) -> None:
        process, self._process = self._process, None
        if process is not None:
            _stop(process, immediate=immediate)

    def start(self) -> None:
        if self.running:
            return
        self._starts += 1
        process = _launch(
            self._bindir,
            self._run_as,
            self.server.base,
            self.server.port,
            f"postgres-restart-{self._starts}.log",
        )
        if process is None:
            logs = (self.server.base / f"postgres-restart-{self._starts}.log").read_text(
                errors="replace"
            )
            raise RuntimeError(f"PostgreSQL did not start again on {self.server.port}:\n{logs}")
        self._process = process

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.server.base, ignore_errors=True)


@contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A private server (see :class:`RestartablePostgres`) with the ``anigraph`` database."""
    bindir, run_as = _require_postgres()
    running = RestartablePostgres(bindir, run_as)
    try:
        running.server.create_database(DATABASE)
        yield running
    finally:
        running.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir, run_as = _require_postgres()
    server, process = _start(bindir, run_as)
    try:
        server.create_database(DATABASE)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+psycopg://postgres@127.0.0.1:PORT/anigraph`` on a private, running server."""
    return postgres_server.url(DATABASE)


@contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """An empty database of its own on ``server`` (its URL), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)
