"""The database contract: what the service needs from a database, on SQLite and on PostgreSQL.

Every test runs on both: a fresh SQLite file, and a fresh database (``CREATE DATABASE``) on the
real PostgreSQL server of ``pg_fixtures`` (which runs in a non-UTC zone on purpose). The
concurrency tests use real threads, each with its own connection, released together by a
barrier: claims, SessionId dedupe and PULL takes must hold under contention, not just in turn.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.pool import NullPool

from anigraph.context import Context
from anigraph.db.database import Database
from anigraph.db.migrate import config, current, target_metadata
from anigraph.db.models import Dedupe, Media, SubApp, Task
from anigraph.db.models_events import OutboxEvent
from anigraph.jobs import leases
from anigraph.jobs.pool import new_owner
from anigraph.notify import config as event_config
from anigraph.notify import outbox, pull
from anigraph.services import processing
from anigraph.settings import Settings
from anigraph.storage.local import LocalStore
from jobs_fixtures import (
    OTHER_SUB_APP,
    SUB_APP,
    T0,
    Clock,
    add_task,
    entry,
    load_task,
    sub,
)
from pg_fixtures import PostgresServer, fresh_database
from pg_fixtures import postgres_server as postgres_server  # the session fixture

THREADS = 8


def public_resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'contract.db'}")
        yield database
        database.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with fresh_database(server) as url:
        database = Database(url)
        yield database
        database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A new, empty database (no schema yet)."""
    yield from new_database(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A new database with the schema built by the migrations."""
    for db in new_database(request, tmp_path):
        db.create_schema()
        yield db


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(database: Database, tmp_path: Path, clock: Clock) -> Context:
    """A context on ``database`` with two sub-apps, like ``jobs_fixtures.make_ctx``."""
    data = tmp_path / "data"
    settings = replace(
        Settings(data_dir=data, public_url="http://files.test"),
        lease_seconds=30.0,
        retry_backoff_seconds=10.0,
    )
    context = Context(settings, database, LocalStore(data / "files"), clock)
    with database.session() as session:
        for sub_app in (SUB_APP, OTHER_SUB_APP):
            session.add(SubApp(id=sub_app, name="", created_at=T0))
    return context


def together(threads: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(n)`` on ``threads`` threads released at once; the results (or exceptions)."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = work(n)
        except BaseException as error:  # reported to the test, not lost in the thread
            results[n] = error

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    assert not any(thread.is_alive() for thread in pool), "a thread is stuck"
    return results


# -- schema ------------------------------------------------------------------------------------


def test_migrations_build_the_models_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, target_metadata()) == []
    head = ScriptDirectory.from_config(config()).get_current_head()
    assert current(database.engine) == head
    database.create_schema()  # again: nothing to do, nothing fails
    assert current(database.engine) == head


MIGRATE = (
    "import sys; from anigraph.db.database import Database; Database(sys.argv[1]).create_schema()"
)


def test_concurrent_first_starts_build_the_schema_once(empty_database: Database) -> None:
    """Several processes (machines) starting together on a new database: all succeed."""
    url = empty_database.engine.url.render_as_string(hide_password=False)
    starts = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    failures = [p.stderr.read() if p.stderr else "" for p in starts if p.wait(120) != 0]
    assert failures == []
    head = ScriptDirectory.from_config(config()).get_current_head()
    assert current(empty_database.engine) == head
    with empty_database.engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    # In one process too (API threads and the worker pool share the migrations' globals).
    assert [r for r in together(4, lambda n: empty_database.create_schema()) if r] == []


# -- task claims -------------------------------------------------------------------------------


def test_claim_order_is_priority_then_age(ctx: Context, clock: Clock) -> None:
    old_low = add_task(ctx, priority=0, created_at=T0 - timedelta(seconds=30))
    new_high = add_task(ctx, priority=5, created_at=T0 - timedelta(seconds=10))
    old_high = add_task(ctx, priority=5, created_at=T0 - timedelta(seconds=20))
    oldest_negative = add_task(ctx, priority=-1, created_at=T0 - timedelta(seconds=100))
    backing_off = add_task(
        ctx,
        priority=10,
        created_at=T0 - timedelta(seconds=5),
        not_before=T0 + timedelta(seconds=60),
    )
    claims = [leases.claim_next(ctx, f"owner-{i}") for i in range(5)]
    assert claims == [old_high, new_high, old_low, oldest_negative, None]
    task = load_task(ctx, old_high)
    assert (task.status, task.lease_owner, task.attempt, task.begin_at) == (
        "PROCESSING",
        "owner-0",
        1,
        T0,
    )
    assert task.lease_expires_at == T0 + timedelta(seconds=30)
    clock.advance(60)
    assert leases.claim_next(ctx, "late") == backing_off


@pytest.mark.parametrize("tasks", [1, 60])
def test_concurrent_claims_never_claim_a_task_twice(ctx: Context, tasks: int) -> None:
    task_ids = {add_task(ctx, created_at=T0 - timedelta(seconds=i)) for i in range(tasks)}

    def claim_all(n: int) -> list[tuple[str, str]]:
        mine: list[tuple[str, str]] = []
        while True:
            owner = new_owner(n)
            task_id = leases.claim_next(ctx, owner)
            if task_id is None:
                return mine
            mine.append((task_id, owner))

    results = together(THREADS, claim_all)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    everything = [pair for mine in results for pair in mine]
    assert sorted(task_id for task_id, _ in everything) == sorted(task_ids)
    for task_id, owner in everything:
        task = load_task(ctx, task_id)
        assert (task.lease_owner, task.attempt) == (owner, 1)
    assert leases.counts(ctx)["PROCESSING"] == tasks


def test_expired_lease_is_reclaimed_and_the_old_owner_fenced(ctx: Context, clock: Clock) -> None:
    task_id = add_task(ctx)
    assert leases.claim_next(ctx, "old") == task_id
    assert leases.claim_next(ctx, "new") is None
    clock.advance(31)
    assert leases.claim_next(ctx, "new") == task_id
    task = load_task(ctx, task_id)
    assert (task.lease_owner, task.attempt) == ("new", 2)
    done = entry(20000)
    done["AnimatedGraphicTask"].update(Status="FAIL", ErrCodeExt="InvalidInput", ErrCode=40000)
    assert not leases.heartbeat(ctx, task_id, "old")
    assert not leases.record_subtask(ctx, task_id, "old", 0, done)
    assert not leases.finish(ctx, task_id, "old")
    assert sub(ctx, task_id)["Status"] == "PROCESSING"
    assert leases.record_subtask(ctx, task_id, "new", 0, done)
    assert leases.finish(ctx, task_id, "new")
    assert load_task(ctx, task_id).status == "FINISH"


def test_reap_expired_returns_tasks_to_waiting(ctx: Context, clock: Clock) -> None:
    expired = [add_task(ctx, created_at=T0 - timedelta(seconds=i)) for i in range(3)]
    for n in range(3):
        assert leases.claim_next(ctx, f"dead-{n}") is not None
    clock.advance(31)
    live = add_task(ctx, priority=1)  # claimed before the expired ones
    assert leases.claim_next(ctx, "alive") == live
    results = together(4, lambda n: leases.reap_expired(ctx))
    reaped = [task_id for result in results for task_id in result]
    assert sorted(reaped) == sorted(expired)  # each once, whichever reaper got it
    assert leases.counts(ctx) == {"WAITING": 3, "PROCESSING": 1, "FINISH": 0, "ABORTED": 0}


# -- SessionId dedupe --------------------------------------------------------------------------


def test_session_id_dedupe_under_concurrency_creates_exactly_one(ctx: Context) -> None:
    with ctx.db.session() as session:
        session.add(
            Media(file_id="5285890780000000001", sub_app_id=SUB_APP, store_key=None,
                  created_at=T0, updated_at=T0)
        )  # fmt: skip
    created_before: list[str] = []
    for round_ in range(3):
        request = processing.TaskRequest(
            file_id="5285890780000000001", items=[{"Definition": 20000}], session_id=f"s{round_}"
        )
        results = together(
            THREADS, lambda n, r=request: processing.create_task(ctx, SUB_APP, r, "ProcessMedia")
        )
        created = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, processing.DuplicateSession)]
        assert len(refused) == THREADS - len(created), results
        assert len(created) == 1
        created_before += created
        with ctx.db.session() as session:
            tasks = session.scalars(select(Task.task_id)).all()
            dedupes = session.scalars(select(Dedupe.task_id)).all()
        assert sorted(tasks) == sorted(dedupes) == sorted(created_before)
    # An expired SessionId is free again: exactly one racer takes it over.
    with ctx.db.session() as session:
        session.add(
            Dedupe(sub_app_id=SUB_APP, action="ProcessMedia", session_id="old",
                   task_id="gone", created_at=T0 - timedelta(days=4))
        )  # fmt: skip
    old = replace(request, session_id="old")
    results = together(THREADS, lambda n: processing.create_task(ctx, SUB_APP, old, "ProcessMedia"))
    taken = [r for r in results if isinstance(r, str)]
    assert len(taken) == 1
    assert all(isinstance(r, processing.DuplicateSession) for r in results if r not in taken)
    with ctx.db.session() as session:
        owner = session.scalars(select(Dedupe.task_id).where(Dedupe.session_id == "old")).all()
    assert owner == taken
    # Once more: refused; another action is another key.
    with pytest.raises(processing.DuplicateSession):
        processing.create_task(ctx, SUB_APP, request, "ProcessMedia")
    processing.create_task(ctx, SUB_APP, request, "PullUpload")


# -- the PULL outbox ---------------------------------------------------------------------------


def test_concurrent_pullers_never_get_the_same_event(ctx: Context, clock: Clock) -> None:
    event_config.modify(
        ctx,
        SUB_APP,
        event_config.Changes(mode="PULL", delete_switch="ON"),
        resolve=public_resolver,
    )
    total = 100
    with ctx.db.session() as session:
        for i in range(total):
            payload = {"FileIdSet": [str(i)], "FileDeleteResultInfo": []}
            assert outbox.emit(session, ctx, SUB_APP, "FileDeleted", payload) is not None

    def take_and_confirm(n: int) -> list[str]:
        mine: list[str] = []
        while events := pull.take(ctx, SUB_APP, limit=7):
            pull.confirm(ctx, SUB_APP, [event["EventHandle"] for event in events])
            mine.extend(event["FileDeleteEvent"]["FileIdSet"][0] for event in events)
        return mine

    results = together(THREADS, take_and_confirm)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    pulled = [file_id for mine in results for file_id in mine]
    assert sorted(pulled, key=int) == [str(i) for i in range(total)]  # each exactly once
    assert pull.count_to_pull(ctx, SUB_APP) == 0
    clock.advance(31)
    assert pull.take(ctx, SUB_APP) == []
    with ctx.db.session() as session:
        states = session.execute(
            select(OutboxEvent.state, func.count()).group_by(OutboxEvent.state)
        ).all()
    assert [tuple(row) for row in states] == [(outbox.CONFIRMED, total)]


# -- values ------------------------------------------------------------------------------------


def test_datetimes_round_trip_as_aware_utc(database: Database) -> None:
    shanghai = timezone(timedelta(hours=8))
    moments = {
        1: datetime(2026, 11, 25, 9, 0, 0, 123456, tzinfo=UTC),
        2: datetime(2026, 11, 25, 17, 0, 0, 654321, tzinfo=shanghai),  # 09:00 UTC
        3: datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
    }
    with database.session() as session:
        for key, moment in moments.items():
            session.add(SubApp(id=key, name="", created_at=moment))
    with database.session() as session:
        back = {row.id: row.created_at for row in session.scalars(select(SubApp))}
        earliest = session.scalar(
            select(SubApp.id).where(SubApp.created_at < moments[1]).order_by(SubApp.created_at)
        )
        same = session.scalars(
            select(SubApp.id).where(SubApp.created_at == moments[1]).order_by(SubApp.id)
        ).all()
    assert back == moments
    for value in back.values():
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert back[2].isoformat() == "2026-11-25T09:00:00.654321+00:00"
    assert earliest == 3
    assert same == [1]
    with pytest.raises(StatementError, match="naive datetime"), database.session() as session:
        session.add(SubApp(id=4, name="", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_json_round_trips(database: Database) -> None:
    content = {"a": [1, 2.5, None, True], "nested": {"b": "ü€"}, "empty": {}}
    with database.session() as session:
        session.add(SubApp(id=SUB_APP, name="", created_at=T0))
        session.add(
            Task(task_id="t", sub_app_id=SUB_APP, status="WAITING", subtasks=[content],
                 payload=content, created_at=T0)
        )  # fmt: skip
    with database.session() as session:
        task = session.get(Task, "t")
        assert task is not None
        assert task.subtasks == [content]
        assert task.payload == content


def test_connections_survive_a_server_side_disconnect(database: Database) -> None:
    """A pooled connection the server dropped (restart, failover, idle kill) is replaced."""
    with database.session() as session:
        session.add(SubApp(id=SUB_APP, name="", created_at=T0))
    if database.is_sqlite:
        return
    admin = create_engine(database.engine.url, poolclass=NullPool)
    with admin.connect() as connection:
        killed = connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()
    assert killed == 1
    with database.session() as session:  # the pooled connection was killed: pre-ping heals
        assert session.scalar(select(func.count()).select_from(SubApp)) == 1


# -- templates ---------------------------------------------------------------------------------


def test_concurrent_template_creation(ctx: Context) -> None:
    """Definitions are unique across sub-apps and the 16-per-sub-app cap holds under races."""
    from anigraph.services import keys, templates

    sub_apps = [1_500_000_101, 1_500_000_102]
    for sub_app in sub_apps:
        keys.ensure_sub_app(ctx, sub_app)
    made = together(
        12, lambda n: templates.create(ctx, sub_apps[n % 2], {"Fps": 5, "Name": f"t{n}"})
    )
    assert all(isinstance(value, int) for value in made), made
    assert len(set(made)) == 12
    crowd = together(20, lambda n: templates.create(ctx, sub_apps[0], {"Fps": 5}))
    created = [value for value in crowd if isinstance(value, int)]
    refused = [value for value in crowd if isinstance(value, templates.TooManyTemplates)]
    assert len(created) == 16 - 6 and len(refused) == 20 - len(created), crowd


def test_deleted_template_definitions_are_never_given_again(ctx: Context) -> None:
    """A Definition names one template forever, even under concurrent creation and deletion."""
    from anigraph.services import keys, templates

    sub_apps = [1_500_000_103, 1_500_000_104]
    for sub_app in sub_apps:
        keys.ensure_sub_app(ctx, sub_app)
    first = templates.create(ctx, sub_apps[0], {"Fps": 5})
    templates.delete(ctx, sub_apps[0], first)
    again = templates.create(ctx, sub_apps[0], {"Fps": 5})
    assert again > first

    def create_and_delete(n: int) -> int:
        definition = templates.create(ctx, sub_apps[n % 2], {"Fps": 5})
        templates.delete(ctx, sub_apps[n % 2], definition)
        return definition

    made = together(12, create_and_delete)
    assert all(isinstance(value, int) for value in made), made
    assert len(set(made)) == 12 and min(made) > again
