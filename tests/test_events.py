"""Event notification below the HTTP layer: the outbox, the PULL queue, PUSH delivery, the hooks.

A real SQLite database in a temp folder and a settable clock: visibility (30 s), retention
(4 days), retry schedules and leases are tested by moving the clock, not by waiting. PUSH
delivery uses a recording sender in place of the HTTP client (the wire is tested in
``tests/service/test_events_api.py``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from anigraph.context import Context
from anigraph.db.models import Task
from anigraph.db.models_events import OutboxEvent
from anigraph.jobs import leases
from anigraph.jobs.procedure_events import install_hooks
from anigraph.metrics import Metrics
from anigraph.notify import config, dead_letters, outbox, pull
from anigraph.notify.dispatch import EventDispatcher, RetrySchedule, callback_body
from anigraph.services import media
from jobs_fixtures import (
    OTHER_SUB_APP,
    SUB_APP,
    T0,
    Clock,
    add_media,
    add_task,
    entry,
    load_task,
    make_ctx,
)

URL = "http://callback.test/hook"


def public_resolver(host: str, port: int) -> list[str]:
    """Every name resolves to a public documentation-free address (no DNS in unit tests)."""
    return ["93.184.216.34"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(tmp_path: Path, clock: Clock) -> Iterator[Context]:
    context = make_ctx(tmp_path, clock)
    uninstall = install_hooks(context)
    yield context
    uninstall()


def configure(ctx: Context, sub_app_id: int = SUB_APP, **changes: Any) -> None:
    config.modify(ctx, sub_app_id, config.Changes(**changes), resolve=public_resolver)


def rows(ctx: Context, **where: Any) -> list[OutboxEvent]:
    with ctx.db.session() as session:
        stmt = select(OutboxEvent).order_by(OutboxEvent.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(OutboxEvent, name) == value)
        return list(session.scalars(stmt))


def emit_deleted(ctx: Context, file_id: str, sub_app_id: int = SUB_APP) -> OutboxEvent | None:
    payload = {"FileIdSet": [file_id], "FileDeleteResultInfo": []}
    with ctx.db.session() as session:
        return outbox.emit(session, ctx, sub_app_id, "FileDeleted", payload)


def emit_state(ctx: Context, task_id: str, sub_app_id: int = SUB_APP) -> None:
    with ctx.db.session() as session:
        outbox.emit(session, ctx, sub_app_id, "ProcedureStateChanged", {"TaskId": task_id})


def file_ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["FileDeleteEvent"]["FileIdSet"][0] for event in events]


# -- the outbox: gates ---------------------------------------------------------------------


def test_push_mode_without_a_url_writes_nothing(ctx: Context) -> None:
    configure(ctx, delete_switch="ON")
    assert emit_deleted(ctx, "1") is None
    emit_state(ctx, "t")
    assert rows(ctx) == []


def test_switches_gate_their_event_types(ctx: Context) -> None:
    configure(ctx, mode="PULL")
    assert emit_deleted(ctx, "1") is None  # DeleteMediaCompleteEventSwitch OFF (default)
    with ctx.db.session() as session:
        assert outbox.emit(session, ctx, SUB_APP, "NewFileUpload", {}) is None
        assert outbox.emit(session, ctx, SUB_APP, "PullComplete", {}) is None
    emit_state(ctx, "t")  # no switch: always
    configure(ctx, delete_switch="ON", upload_switch="ON")
    assert emit_deleted(ctx, "2") is not None
    with ctx.db.session() as session:
        assert outbox.emit(session, ctx, SUB_APP, "NewFileUpload", {}) is not None
    assert [row.event_type for row in rows(ctx)] == [
        "ProcedureStateChanged",
        "FileDeleted",
        "NewFileUpload",
    ]
    configure(ctx, delete_switch="OFF")
    assert emit_deleted(ctx, "3") is None


def test_events_are_per_sub_app_config(ctx: Context) -> None:
    configure(ctx, mode="PULL", delete_switch="ON")
    assert emit_deleted(ctx, "1", OTHER_SUB_APP) is None  # the other sub-app: PUSH, no URL
    assert emit_deleted(ctx, "2") is not None


def test_an_event_commits_or_rolls_back_with_its_transaction(ctx: Context) -> None:
    configure(ctx, mode="PULL", delete_switch="ON")
    with pytest.raises(RuntimeError), ctx.db.session() as session:
        outbox.emit(session, ctx, SUB_APP, "FileDeleted", {"FileIdSet": ["1"]})
        raise RuntimeError("the state change failed")
    assert rows(ctx) == []


def test_listeners_are_woken_after_commit_only(ctx: Context) -> None:
    configure(ctx, mode="PULL", delete_switch="ON")
    seen: list[int] = []

    def listener() -> None:
        with ctx.db.session() as session:
            seen.append(int(session.scalar(select(func.count(OutboxEvent.id))) or 0))

    pushed: list[str] = []

    def push_listener() -> None:
        pushed.append("woken")

    outbox.add_listener(listener, outbox.PULL)
    outbox.add_listener(push_listener, outbox.PUSH)
    try:
        with ctx.db.session() as session:
            outbox.emit(session, ctx, SUB_APP, "FileDeleted", {"FileIdSet": ["1"]})
            outbox.emit(session, ctx, SUB_APP, "FileDeleted", {"FileIdSet": ["2"]})
            assert seen == []
        assert seen == [2]  # once per commit, and the rows are visible by then
        with pytest.raises(RuntimeError), ctx.db.session() as session:
            outbox.emit(session, ctx, SUB_APP, "FileDeleted", {"FileIdSet": ["3"]})
            raise RuntimeError
        assert seen == [2]
        # PULL events wake PULL consumers only; a PUSH event wakes the PUSH ones.
        assert pushed == []
        configure(
            ctx, mode="PUSH", notification_url="https://hooks.example.com/vod", delete_switch="ON"
        )
        with ctx.db.session() as session:
            outbox.emit(session, ctx, SUB_APP, "FileDeleted", {"FileIdSet": ["4"]})
        assert (pushed, seen) == (["woken"], [2])
    finally:
        outbox.remove_listener(listener, outbox.PULL)
        outbox.remove_listener(push_listener, outbox.PUSH)


# -- the PULL queue ------------------------------------------------------------------------


@pytest.fixture
def pulling(ctx: Context) -> Context:
    configure(ctx, mode="PULL", delete_switch="ON")
    return ctx


def test_pulled_events_are_hidden_30s_then_come_back_with_a_new_handle(
    pulling: Context, clock: Clock
) -> None:
    emit_deleted(pulling, "1")
    first = pull.take(pulling, SUB_APP)
    assert len(first) == 1
    event = first[0]
    assert event["EventType"] == "FileDeleted"
    assert event["EventHandle"]
    assert event["FileDeleteEvent"] == {"FileIdSet": ["1"], "FileDeleteResultInfo": []}
    # The other in-scope members are null, as unset nested objects are on the wire.
    assert event["ProcedureStateChangeEvent"] is None
    assert pull.take(pulling, SUB_APP) == []
    clock.advance(29)
    assert pull.take(pulling, SUB_APP) == []
    clock.advance(1.5)
    again = pull.take(pulling, SUB_APP)
    assert file_ids(again) == ["1"]
    assert again[0]["EventHandle"] != event["EventHandle"]
    # The first handle was replaced: it no longer confirms anything.
    with pytest.raises(pull.HandleError):
        pull.confirm(pulling, SUB_APP, [event["EventHandle"]])
    pull.confirm(pulling, SUB_APP, [again[0]["EventHandle"]])


def test_confirmed_events_never_come_back(pulling: Context, clock: Clock) -> None:
    emit_deleted(pulling, "1")
    emit_deleted(pulling, "2")
    events = pull.take(pulling, SUB_APP)
    pull.confirm(pulling, SUB_APP, [events[0]["EventHandle"]])
    clock.advance(31)
    assert file_ids(pull.take(pulling, SUB_APP)) == ["2"]
    clock.advance(3600 * 24)
    assert file_ids(pull.take(pulling, SUB_APP)) == ["2"]


def test_a_late_confirm_is_refused_and_the_event_stays_pending(
    pulling: Context, clock: Clock
) -> None:
    emit_deleted(pulling, "1")
    handle = pull.take(pulling, SUB_APP)[0]["EventHandle"]
    clock.advance(31)
    with pytest.raises(pull.HandleError, match="expired"):
        pull.confirm(pulling, SUB_APP, [handle])
    assert rows(pulling)[0].state == "pending"
    assert file_ids(pull.take(pulling, SUB_APP)) == ["1"]


def test_confirm_is_all_or_nothing_and_idempotent(pulling: Context) -> None:
    emit_deleted(pulling, "1")
    handle = pull.take(pulling, SUB_APP)[0]["EventHandle"]
    with pytest.raises(pull.HandleError, match="unknown"):
        pull.confirm(pulling, SUB_APP, [handle, "no-such-handle"])
    assert rows(pulling)[0].state == "pending"
    pull.confirm(pulling, SUB_APP, [handle])
    pull.confirm(pulling, SUB_APP, [handle])  # a retried request
    assert rows(pulling)[0].state == "confirmed"


def test_only_the_callers_sub_app(pulling: Context) -> None:
    configure(pulling, OTHER_SUB_APP, mode="PULL", delete_switch="ON")
    emit_deleted(pulling, "mine")
    emit_deleted(pulling, "theirs", OTHER_SUB_APP)
    mine = pull.take(pulling, SUB_APP)
    assert file_ids(mine) == ["mine"]
    with pytest.raises(pull.HandleError, match="unknown"):
        pull.confirm(pulling, OTHER_SUB_APP, [mine[0]["EventHandle"]])
    assert pull.count_to_pull(pulling, OTHER_SUB_APP) == 1
    assert file_ids(pull.take(pulling, OTHER_SUB_APP)) == ["theirs"]


def test_at_most_16_per_pull_oldest_first_none_lost(pulling: Context) -> None:
    for number in range(40):
        emit_deleted(pulling, str(number))
    assert pull.count_to_pull(pulling, SUB_APP) == 40
    seen: list[str] = []
    for expected in (16, 16, 8, 0):
        batch = pull.take(pulling, SUB_APP, limit=100)
        assert len(batch) == expected
        seen += file_ids(batch)
        pull.confirm(pulling, SUB_APP, [event["EventHandle"] for event in batch])
    assert seen == [str(number) for number in range(40)]
    assert pull.count_to_pull(pulling, SUB_APP) == 0


def test_events_older_than_4_days_are_dropped(pulling: Context, clock: Clock) -> None:
    emit_deleted(pulling, "old")
    clock.advance(3600)
    emit_deleted(pulling, "new")
    clock.advance(4 * 24 * 3600 - 1800)  # "old" is 4 days and 30 min old, "new" not yet 4 days
    assert pull.count_to_pull(pulling, SUB_APP) == 1
    assert file_ids(pull.take(pulling, SUB_APP)) == ["new"]
    assert pull.purge(pulling) == 1
    assert [row.content["FileDeleteEvent"]["FileIdSet"] for row in rows(pulling)] == [["new"]]


def test_long_poll_waits_then_returns_empty(pulling: Context) -> None:
    started = time.monotonic()
    assert pull.pull(pulling, SUB_APP, wait_seconds=0.6) == []
    assert 0.55 <= time.monotonic() - started < 2.0


def test_long_poll_returns_as_soon_as_an_event_commits(pulling: Context) -> None:
    timer = threading.Timer(0.3, lambda: emit_deleted(pulling, "late"))
    timer.start()
    started = time.monotonic()
    # A long poll interval: only the in-process wake-up can make this quick.
    events = pull.pull(pulling, SUB_APP, wait_seconds=5.0, poll_seconds=5.0)
    elapsed = time.monotonic() - started
    timer.join()
    assert file_ids(events) == ["late"]
    assert elapsed < 2.0


def test_long_poll_finds_events_written_elsewhere_by_polling(pulling: Context) -> None:
    emit_deleted(pulling, "x")
    with pulling.db.session() as session:  # hidden, as if another consumer had pulled it
        session.execute(update(OutboxEvent).values(invisible_until=T0 + timedelta(seconds=30)))
    # Made visible without an in-process commit signal: only the periodic look finds it.
    timer = threading.Timer(0.3, lambda: _unhide(pulling))
    timer.start()
    started = time.monotonic()
    events = pull.pull(pulling, SUB_APP, wait_seconds=3.0, poll_seconds=0.1)
    timer.join()
    assert file_ids(events) == ["x"]
    assert time.monotonic() - started < 2.0


def _unhide(ctx: Context) -> None:
    with ctx.db.session() as session:
        session.execute(update(OutboxEvent).values(invisible_until=None))


def test_push_events_are_not_pullable(ctx: Context) -> None:
    configure(ctx, notification_url=URL, delete_switch="ON")
    emit_deleted(ctx, "1")
    assert pull.take(ctx, SUB_APP) == []
    assert pull.count_to_pull(ctx, SUB_APP) == 0


# -- ProcedureStateChanged hooks -----------------------------------------------------------


def claim(ctx: Context) -> tuple[str, str]:
    owner = "worker-1"
    task_id = leases.claim_next(ctx, owner)
    assert task_id is not None
    return task_id, owner


def ended(definition: int = 20000, status: str = "SUCCESS") -> dict[str, Any]:
    done = entry(definition)
    done["AnimatedGraphicTask"]["Status"] = status
    return done


def set_mode(ctx: Context, task_id: str, mode: str) -> None:
    with ctx.db.session() as session:
        session.execute(update(Task).where(Task.task_id == task_id).values(notify_mode=mode))


def run_two_subtasks(ctx: Context, mode: str, tmp_path: Path) -> str:
    source = tmp_path / "source.mp4"
    source.write_bytes(b"not really a video")
    file_id = add_media(ctx, source)
    add_task(ctx, file_id, [entry(20000), entry(20001)])
    task_id, owner = claim(ctx)
    set_mode(ctx, task_id, mode)
    progress = entry(20000)
    progress["AnimatedGraphicTask"]["Progress"] = 50
    assert leases.record_subtask(ctx, task_id, owner, 0, progress)  # progress: no change
    assert leases.record_subtask(ctx, task_id, owner, 0, ended(20000))
    assert leases.record_subtask(ctx, task_id, owner, 1, ended(20001, "FAIL"))
    assert leases.finish(ctx, task_id, owner)
    return task_id


def state_events(ctx: Context) -> list[dict[str, Any]]:
    return [event["ProcedureStateChangeEvent"] for event in pull.take(ctx, SUB_APP)]


@pytest.mark.parametrize("mode", ["Finish", ""])
def test_finish_mode_reports_once_at_the_end(pulling: Context, tmp_path: Path, mode: str) -> None:
    task_id = run_two_subtasks(pulling, mode, tmp_path)
    events = state_events(pulling)
    assert [(e["TaskId"], e["Status"]) for e in events] == [(task_id, "FINISH")]
    payload = events[0]
    assert [r["AnimatedGraphicTask"]["Status"] for r in payload["MediaProcessResultSet"]] == [
        "SUCCESS",
        "FAIL",
    ]
    assert payload["FileName"] == "source"
    assert payload["FileUrl"].startswith("http://files.test/files/")


def test_change_mode_reports_every_subtask_change_the_last_as_finish(
    pulling: Context, tmp_path: Path
) -> None:
    task_id = run_two_subtasks(pulling, "Change", tmp_path)
    events = state_events(pulling)
    assert [(e["TaskId"], e["Status"], e["TasksNotifyMode"]) for e in events] == [
        (task_id, "PROCESSING", "Change"),
        (task_id, "FINISH", "Change"),
    ]
    first = [r["AnimatedGraphicTask"]["Status"] for r in events[0]["MediaProcessResultSet"]]
    assert first == ["SUCCESS", "PROCESSING"]


def test_none_mode_never_reports(pulling: Context, tmp_path: Path) -> None:
    run_two_subtasks(pulling, "None", tmp_path)
    assert state_events(pulling) == []


def test_the_event_is_written_in_the_finish_transaction(
    pulling: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_task(pulling)
    task_id, owner = claim(pulling)
    assert leases.record_subtask(pulling, task_id, owner, 0, ended())

    def failing(session: Any, task: Task) -> None:
        raise RuntimeError("the finish fails after our hook wrote the event")

    hooks = [*leases.on_finish, failing]
    monkeypatch.setattr(leases, "on_finish", hooks)
    with pytest.raises(RuntimeError):
        leases.finish(pulling, task_id, owner)
    assert rows(pulling) == []  # rolled back with the finish
    assert load_task(pulling, task_id).status == "PROCESSING"
    hooks.remove(failing)
    assert leases.finish(pulling, task_id, owner)
    assert [row.content["ProcedureStateChangeEvent"]["Status"] for row in rows(pulling)] == [
        "FINISH"
    ]


def test_a_failing_event_write_rolls_the_subtask_change_back(
    pulling: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_task(pulling, subtasks=[entry(20000), entry(20001)])
    task_id, owner = claim(pulling)
    set_mode(pulling, task_id, "Change")

    def broken_emit(*args: Any) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr("anigraph.jobs.procedure_events.emit", broken_emit)
    with pytest.raises(RuntimeError):
        leases.record_subtask(pulling, task_id, owner, 0, ended())
    assert load_task(pulling, task_id).subtasks[0]["AnimatedGraphicTask"]["Status"] == (
        "PROCESSING"
    )


def test_install_hooks_twice_does_not_double_events(pulling: Context) -> None:
    install_hooks(pulling)
    install_hooks(pulling)
    add_task(pulling)
    task_id, owner = claim(pulling)
    assert leases.record_subtask(pulling, task_id, owner, 0, ended())
    assert leases.finish(pulling, task_id, owner)
    assert len(rows(pulling)) == 1


# -- FileDeleted -----------------------------------------------------------------------------


def test_delete_media_emits_file_deleted(pulling: Context, tmp_path: Path) -> None:
    source = tmp_path / "a.mp4"
    source.write_bytes(b"x")
    whole = add_media(pulling, source)
    original = add_media(pulling, source)
    media.delete(pulling, SUB_APP, whole, None)
    media.delete(pulling, SUB_APP, original, [{"Type": "OriginalFiles", "Definition": 0}])
    events = [event["FileDeleteEvent"] for event in pull.take(pulling, SUB_APP)]
    assert events == [
        {"FileIdSet": [whole], "FileDeleteResultInfo": [{"FileId": whole, "DeleteParts": []}]},
        {
            "FileIdSet": [original],
            "FileDeleteResultInfo": [
                {"FileId": original, "DeleteParts": [{"Type": "OriginalFiles", "Definition": 0}]}
            ],
        },
    ]


def test_delete_media_with_the_switch_off_emits_nothing(ctx: Context, tmp_path: Path) -> None:
    configure(ctx, mode="PULL")
    source = tmp_path / "a.mp4"
    source.write_bytes(b"x")
    media.delete(ctx, SUB_APP, add_media(ctx, source), None)
    assert rows(ctx) == []


# -- configuration -------------------------------------------------------------------------


def test_describe_defaults_and_modify_partially(ctx: Context) -> None:
    assert config.describe(ctx, SUB_APP) == {
        "Mode": "PUSH",
        "NotificationUrl": "",
        "UploadMediaCompleteEventSwitch": "OFF",
        "DeleteMediaCompleteEventSwitch": "OFF",
        "PersistenceCompleteEventSwitch": "OFF",
    }
    configure(ctx, notification_url=URL, delete_switch="ON", sign_key="abc123")
    configure(ctx, mode="PULL")  # other fields kept
    assert config.describe(ctx, SUB_APP) == {
        "Mode": "PULL",
        "NotificationUrl": URL,
        "UploadMediaCompleteEventSwitch": "OFF",
        "DeleteMediaCompleteEventSwitch": "ON",
        "PersistenceCompleteEventSwitch": "OFF",
    }
    configure(ctx, notification_url="")  # present and empty: cleared
    assert config.describe(ctx, SUB_APP)["NotificationUrl"] == ""
    assert config.describe(ctx, OTHER_SUB_APP)["Mode"] == "PUSH"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://callback.test/", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("http:///nohost", "no host"),
        ("http://user:pw@callback.test/", "credentials"),
        ("http://callback.test:99999/", "port 99999 is not valid"),
        ("http://callback.test:6379/", "port 6379 is not allowed"),
        ("http://callback.test/a b", "spaces"),
        ("http://2130706433/", "numeric"),
        ("http://127.0.0.1/", "not allowed: loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
    ],
)
def test_bad_callback_urls_are_refused_by_shape(ctx: Context, url: str, message: str) -> None:
    with pytest.raises(config.BadCallbackUrl, match=message):
        configure(ctx, notification_url=url)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1", "100.64.0.1"],
)
def test_callback_urls_resolving_to_private_addresses_are_refused(
    ctx: Context, address: str
) -> None:
    with pytest.raises(config.BadCallbackUrl, match="may not be called back"):
        config.modify(
            ctx,
            SUB_APP,
            config.Changes(notification_url="http://sneaky.test/"),
            resolve=lambda host, port: [address],
        )
    assert config.describe(ctx, SUB_APP)["NotificationUrl"] == ""


def test_unresolvable_callback_host_is_refused(ctx: Context) -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(config.BadCallbackUrl, match="cannot be resolved"):
        config.modify(
            ctx, SUB_APP, config.Changes(notification_url="http://nowhere.test/"), nxdomain
        )


def test_allow_private_networks_opens_a_range(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, allow_private_networks="127.0.0.0/8")
    config.modify(
        ctx,
        SUB_APP,
        config.Changes(notification_url="http://127.0.0.1:8999/hook"),
        resolve=lambda host, port: ["127.0.0.1"],
    )
    assert config.describe(ctx, SUB_APP)["NotificationUrl"] == "http://127.0.0.1:8999/hook"


def test_sign_key_is_letters_and_digits_up_to_32(ctx: Context) -> None:
    configure(ctx, sign_key="a" * 32)
    for bad in ("a" * 33, "key-with-dash", "ключ"):
        with pytest.raises(ValueError, match="SignKey"):
            configure(ctx, sign_key=bad)


# -- PUSH delivery ---------------------------------------------------------------------------


class Receiver:
    """A sender that records requests and answers from a script (status or exception)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append((url, json.loads(body), headers))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer, b""


@pytest.fixture
def pushing(ctx: Context) -> Context:
    configure(ctx, notification_url=URL, delete_switch="ON")
    return ctx


SCHEDULE = RetrySchedule(first_delay=5, max_delay=40, give_up_after=100)


def dispatcher(ctx: Context, receiver: Receiver, **options: Any) -> EventDispatcher:
    return EventDispatcher(ctx, schedule=SCHEDULE, timeout_seconds=5, sender=receiver, **options)


def test_delivered_body_headers_and_signature(pushing: Context, clock: Clock) -> None:
    configure(pushing, sign_key="Secret42")
    emit_deleted(pushing, "1")
    receiver = Receiver(204)
    assert dispatcher(pushing, receiver).run_once() == 1
    url, body, headers = receiver.requests[0]
    assert url == URL
    assert headers["Content-Type"] == "application/json"
    expires = int(T0.timestamp()) + 600
    assert body == {
        "EventType": "FileDeleted",
        "FileDeleteEvent": {"FileIdSet": ["1"], "FileDeleteResultInfo": []},
        "T": expires,
        "Sign": hashlib.md5(f"Secret42{expires}".encode()).hexdigest(),
    }
    (row,) = rows(pushing)
    assert (row.state, row.attempts, row.lease_owner) == ("delivered", 1, None)
    assert dispatcher(pushing, receiver).run_once() == 0  # never sent again


def test_callback_body_drops_handle_and_null_members() -> None:
    content = {"EventHandle": "h", "EventType": "X", "FileUploadEvent": None, "A": {"B": None}}
    assert json.loads(callback_body(content, "", T0)) == {"EventType": "X", "A": {"B": None}}


def test_failures_back_off_exponentially_then_go_dead(pushing: Context, clock: Clock) -> None:
    emit_deleted(pushing, "1")
    metrics = Metrics()
    receiver = Receiver(500, 500, 500, 500, 500, 500, 500)
    sender = dispatcher(pushing, receiver, metrics=metrics)
    waits = []
    for _ in range(10):
        if sender.run_once() == 0:
            break
        (row,) = rows(pushing)
        if row.state == "dead":
            break
        assert row.next_attempt_at is not None
        wait = (row.next_attempt_at - clock()).total_seconds()
        waits.append(wait)
        clock.advance(wait - 0.5)
        assert sender.run_once() == 0  # not due yet
        clock.advance(0.5)
    # 5, 10, 20, 40 (capped), then clamped so the last attempt is 100 s after the first.
    assert waits == [5, 10, 20, 40, 25]
    (row,) = rows(pushing)
    assert (row.state, row.attempts, row.last_error) == ("dead", 6, "HTTP 500")
    assert len(receiver.requests) == 6
    assert metrics.registry.get_sample_value(
        "anigraph_event_callbacks_total", {"outcome": "dead"}
    ) == (1.0)
    assert metrics.registry.get_sample_value(
        "anigraph_event_callbacks_total", {"outcome": "failed"}
    ) == (5.0)
    clock.advance(3600)
    assert sender.run_once() == 0  # dead letters are not retried


def test_dead_letters_are_listed_and_replayed(pushing: Context, clock: Clock) -> None:
    emit_deleted(pushing, "1")
    give_up_at_once = RetrySchedule(first_delay=1, give_up_after=0)
    EventDispatcher(
        pushing, schedule=give_up_at_once, sender=Receiver(ConnectionRefusedError("down"))
    ).run_once()
    (dead,) = dead_letters.list_dead(pushing)
    assert dead["EventType"] == "FileDeleted"
    assert dead["LastError"] == "ConnectionRefusedError: down"
    assert dead_letters.list_dead(pushing, OTHER_SUB_APP) == []
    with pytest.raises(dead_letters.NotDead):
        dead_letters.replay(pushing, dead["EventId"] + 1)
    dead_letters.replay(pushing, dead["EventId"])
    with pytest.raises(dead_letters.NotDead):
        dead_letters.replay(pushing, dead["EventId"])  # pending now
    receiver = Receiver()
    assert dispatcher(pushing, receiver).run_once() == 1
    assert [row.state for row in rows(pushing)] == ["delivered"]
    assert dead_letters.replay_all(pushing) == 0


def test_exceptions_and_redirects_are_failed_attempts(pushing: Context, clock: Clock) -> None:
    emit_deleted(pushing, "1")
    receiver = Receiver(TimeoutError("slow"), 302, 200)
    sender = dispatcher(pushing, receiver)
    errors = []
    for _ in range(3):
        sender.run_once()
        errors.append(rows(pushing)[0].last_error)
        clock.advance(60)
    assert errors == ["TimeoutError: slow", "HTTP 302 (redirects are not followed)", ""]
    assert rows(pushing)[0].state == "delivered"


def test_url_read_at_send_time(pushing: Context, clock: Clock) -> None:
    emit_deleted(pushing, "1")
    configure(pushing, notification_url="")  # cleared after the event was written
    receiver = Receiver()
    dispatcher(pushing, receiver).run_once()
    assert receiver.requests == []
    assert rows(pushing)[0].last_error == "no NotificationUrl is configured"
    configure(pushing, notification_url="http://new.test/hook")
    clock.advance(5)
    dispatcher(pushing, receiver).run_once()
    assert receiver.requests[0][0] == "http://new.test/hook"


def test_creation_order_within_a_sub_app(pushing: Context) -> None:
    configure(pushing, OTHER_SUB_APP, notification_url=URL, delete_switch="ON")
    for number in range(20):
        emit_deleted(pushing, str(number), SUB_APP if number % 3 else OTHER_SUB_APP)
    receiver = Receiver()
    sender = dispatcher(pushing, receiver)
    while sender.run_once():
        pass
    sent = [body["FileDeleteEvent"]["FileIdSet"][0] for _, body, _ in receiver.requests]
    assert sorted(sent, key=int) == [str(n) for n in range(20)]
    for sub_app in (0, 1):
        mine = [n for n in sent if (int(n) % 3 != 0) == bool(sub_app)]
        assert mine == sorted(mine, key=int)


def test_a_lease_keeps_a_second_dispatcher_off(pushing: Context, clock: Clock) -> None:
    emit_deleted(pushing, "1")
    first, second = Receiver(), Receiver()
    one, two = dispatcher(pushing, first), dispatcher(pushing, second)
    claimed = one._claim(max_groups=4)  # one claims, then "crashes" before sending
    assert len(claimed) == 1
    assert two.run_once() == 0
    clock.advance(5 + 15 + 1)  # the lease (timeout + margin) runs out
    assert two.run_once() == 1
    assert len(second.requests) == 1
    # The first dispatcher wakes up: its claim is gone, so it neither sends nor records.
    owner, _, ids = claimed[0]
    assert one._run_group(owner, ids) == 0
    assert first.requests == []
    assert rows(pushing)[0].attempts == 1


def test_crash_between_send_and_record_means_a_retry(pushing: Context, clock: Clock) -> None:
    emit_deleted(pushing, "1")
    receiver = Receiver()
    one = dispatcher(pushing, receiver)
    ((owner, _, ids),) = one._claim(max_groups=4)
    job = one._prepare(ids[0], owner)
    assert job is not None
    assert one._send(job) == ""  # sent, then the process dies before _record
    clock.advance(21)
    assert dispatcher(pushing, receiver).run_once() == 1
    assert len(receiver.requests) == 2  # at-least-once
    assert rows(pushing)[0].state == "delivered"


def test_background_thread_delivers_on_commit_and_stops_cleanly(pushing: Context) -> None:
    receiver = Receiver()
    sender = dispatcher(pushing, receiver, poll_seconds=30.0)
    sender.start()
    try:
        time.sleep(0.2)
        emit_deleted(pushing, "1")
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.requests) == 1  # woken by the commit, not by the 30 s poll
    finally:
        sender.stop()
    emit_deleted(pushing, "2")
    time.sleep(0.3)
    assert len(receiver.requests) == 1  # stopped: no more sends


def test_cli_lists_and_replays_dead_letters(pushing: Context, tmp_path: Path) -> None:
    from anigraph.cli import app

    emit_deleted(pushing, "1")
    EventDispatcher(
        pushing,
        schedule=RetrySchedule(first_delay=1, give_up_after=0),
        sender=Receiver(500),
    ).run_once()
    runner = CliRunner()
    # make_ctx keeps its database outside the data folder: point --db at it.
    options = ["--data-dir", str(tmp_path / "data"), "--db", pushing.db.url]
    listed = runner.invoke(app, ["events", "dead-letters", *options, "--json"])
    assert listed.exit_code == 0, listed.output
    (dead,) = json.loads(listed.output)
    assert (dead["EventType"], dead["LastError"], dead["Attempts"]) == (
        "FileDeleted",
        "HTTP 500",
        1,
    )
    usage = runner.invoke(app, ["events", "replay", *options])
    assert usage.exit_code != 0
    replayed = runner.invoke(app, ["events", "replay", str(dead["EventId"]), *options])
    assert replayed.exit_code == 0, replayed.output
    assert rows(pushing)[0].state == "pending"
    again = runner.invoke(app, ["events", "replay", str(dead["EventId"]), *options])
    assert again.exit_code == 1
    assert runner.invoke(app, ["events", "replay", "--all", *options]).output.startswith(
        "replaying 0"
    )
