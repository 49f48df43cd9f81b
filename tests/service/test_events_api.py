"""Event notification through the official SDK against a real server, and real callbacks.

PULL: ModifyEventConfig / DescribeEventConfig, then PullEvents / ConfirmEvents /
DescribeEventsState after a ProcessMedia task finishes and after DeleteMedia.

PUSH: callback receivers on loopback (the server is started with ``--allow-private-networks
127.0.0.1/32`` so that it may call them): a healthy one (payload and signature checked), one that
fails once, one that is too slow once, one that redirects (never followed; a canary behind the
redirect sees nothing; the event ends a dead letter, listed and replayed with the CLI), and one
that is down while the server is killed with SIGKILL: the event is delivered after the restart.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from service_harness import Server, Vod, anigraph, error_code, free_port, wait_for_task

from anigraph.settings import Settings

SETTINGS = {spec.name for spec in fields(Settings)}
TIMEOUT_SECONDS = 1.0 if "event_timeout_seconds" in SETTINGS else 10.0
"""The callback timeout the servers run with (the setting, once it exists; else the default)."""

_next_sub_app = iter(range(1_700_000_001, 1_700_001_000))


def new_sub_app(server: Server) -> tuple[int, Vod]:
    """A fresh sub-app (its own event config) and an SDK client for it."""
    sub_app_id = next(_next_sub_app)
    return sub_app_id, Vod(server, server.create_key(sub_app_id))


def event_server(tmp_path: Path, retry: float, give_up: float) -> Server:
    extra = [
        "--allow-private-networks",
        "127.0.0.1/32",
        "--event-retry-seconds",
        str(retry),
        "--event-give-up-seconds",
        str(give_up),
    ]
    if "event_timeout_seconds" in SETTINGS:
        extra += ["--event-timeout-seconds", str(TIMEOUT_SECONDS)]
    return Server(tmp_path / "data", free_port(), extra=extra)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Patient retries: failures are retried for a minute."""
    running = event_server(tmp_path_factory.mktemp("events"), retry=0.3, give_up=60)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hasty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Impatient retries: an event is a dead letter two seconds after its first attempt."""
    running = event_server(tmp_path_factory.mktemp("events-hasty"), retry=0.3, give_up=2)
    running.start()
    yield running
    running.stop()


def process(vod: Vod, file_id: str, mode: str = "Finish") -> str:
    request = {
        "FileId": file_id,
        "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000, "EndTimeOffset": 1}]},
        "TasksNotifyMode": mode,
    }
    task_id = str(vod("ProcessMedia", request)["TaskId"])
    assert wait_for_task(vod, task_id)["Status"] == "FINISH"
    return task_id


# -- a callback receiver ---------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Receiver:
    """An HTTP server on loopback answering from a script: each request takes the next answer
    (a status, ``("sleep", s)``, or ``("redirect", url)``); 200 once the script runs out."""

    script: list[Any] = field(default_factory=list)
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    _http: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                receiver.hits.append(
                    Hit(self.path, dict(self.headers.items()), json.loads(raw), time.time())
                )
                answer = receiver.script.pop(0) if receiver.script else 200
                try:
                    if isinstance(answer, tuple) and answer[0] == "sleep":
                        time.sleep(answer[1])
                        answer = 200
                    if isinstance(answer, tuple) and answer[0] == "redirect":
                        self.send_response(302)
                        self.send_header("Location", answer[1])
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(int(answer))
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up (timeout): nothing to answer to
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(*script: Any, port: int = 0) -> Receiver:
        receiver = Receiver(list(script), port).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def state_hits(receiver: Receiver, task_id: str) -> list[Hit]:
    return [
        hit
        for hit in receiver.hits
        if (hit.body.get("ProcedureStateChangeEvent") or {}).get("TaskId") == task_id
    ]


# -- configuration -----------------------------------------------------------------------------


def test_event_config_round_trip(server: Server, receivers: Callable[..., Receiver]) -> None:
    _, vod = new_sub_app(server)
    config = vod("DescribeEventConfig")
    assert {key: config[key] for key in config if key != "RequestId"} == {
        "Mode": "PUSH",
        "NotificationUrl": "",
        "UploadMediaCompleteEventSwitch": "OFF",
        "DeleteMediaCompleteEventSwitch": "OFF",
        "PersistenceCompleteEventSwitch": "OFF",
    }
    url = receivers().url
    vod(
        "ModifyEventConfig",
        {"Mode": "PULL", "NotificationUrl": url, "DeleteMediaCompleteEventSwitch": "ON"},
    )
    vod("ModifyEventConfig", {"UploadMediaCompleteEventSwitch": "ON", "SignKey": "abc123XYZ"})
    config = vod("DescribeEventConfig")
    assert (config["Mode"], config["NotificationUrl"]) == ("PULL", url)
    assert config["UploadMediaCompleteEventSwitch"] == "ON"
    assert config["DeleteMediaCompleteEventSwitch"] == "ON"
    assert config["PersistenceCompleteEventSwitch"] == "OFF"
    assert "SignKey" not in config or config["SignKey"] is None  # never shown
    vod("ModifyEventConfig", {"NotificationUrl": ""})  # present and empty: cleared
    assert vod("DescribeEventConfig")["NotificationUrl"] == ""


@pytest.mark.parametrize(
    "params",
    [
        {"NotificationUrl": "ftp://example.com/callback"},
        {"NotificationUrl": "http://user:secret@example.com/"},
        {"NotificationUrl": "http://10.1.2.3/callback"},  # private, not in the allowed list
        {"NotificationUrl": "http://169.254.169.254/latest/meta-data/"},
        {"NotificationUrl": "http://[::1]/callback"},
        {"NotificationUrl": "http://no-such-host.invalid/callback"},
        {"Mode": "QUEUE"},
        {"DeleteMediaCompleteEventSwitch": "YES"},
        {"SignKey": "not-letters-and-digits"},
        {"SignKey": "a" * 33},
    ],
)
def test_bad_event_config_is_refused(server: Server, params: dict[str, Any]) -> None:
    _, vod = new_sub_app(server)
    assert error_code(lambda: vod("ModifyEventConfig", params)) == "InvalidParameterValue"
    assert vod("DescribeEventConfig")["NotificationUrl"] == ""


def test_bad_url_message_says_why(server: Server) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )

    _, vod = new_sub_app(server)
    with pytest.raises(TencentCloudSDKException) as caught:
        vod("ModifyEventConfig", {"NotificationUrl": "http://10.1.2.3/callback"})
    assert "NotificationUrl" in str(caught.value.message)
    assert "10.1.2.3" in str(caught.value.message)


# -- PULL --------------------------------------------------------------------------------------


def test_pull_and_confirm_after_process_media_and_delete(server: Server, short_clip: Path) -> None:
    sub_app_id, vod = new_sub_app(server)
    vod("ModifyEventConfig", {"Mode": "PULL", "DeleteMediaCompleteEventSwitch": "ON"})
    file_id = server.import_media(short_clip, sub_app_id)
    task_id = process(vod, file_id)
    assert vod("DescribeEventsState")["CountOfEventsToPull"] == 1

    pulled = vod("PullEvents")["EventSet"]
    assert len(pulled) == 1
    event = pulled[0]
    assert event["EventType"] == "ProcedureStateChanged"
    assert event["EventHandle"]
    task = event["ProcedureStateChangeEvent"]
    assert (task["TaskId"], task["Status"], task["FileId"]) == (task_id, "FINISH", file_id)
    assert task["TasksNotifyMode"] == "Finish"
    result = task["MediaProcessResultSet"][0]
    assert result["Type"] == "AnimatedGraphics"
    assert result["AnimatedGraphicTask"]["Status"] == "SUCCESS"
    assert result["AnimatedGraphicTask"]["Output"]["Container"] == "gif"
    assert event["FileDeleteEvent"] is None

    # A handle confirms only its own sub-app's event; bad handles are parameter errors.
    _, stranger = new_sub_app(server)
    assert stranger("DescribeEventsState")["CountOfEventsToPull"] == 0
    handle = event["EventHandle"]
    assert (
        error_code(lambda: stranger("ConfirmEvents", {"EventHandles": [handle]}))
        == "InvalidParameterValue"
    )
    assert (
        error_code(lambda: vod("ConfirmEvents", {"EventHandles": ["no-such-handle"]}))
        == "InvalidParameterValue"
    )
    assert (
        error_code(lambda: vod("ConfirmEvents", {"EventHandles": [handle] * 17}))
        == "InvalidParameterValue"
    )
    vod("ConfirmEvents", {"EventHandles": [handle]})
    vod("ConfirmEvents", {"EventHandles": [handle]})  # a retried confirm succeeds
    assert vod("DescribeEventsState")["CountOfEventsToPull"] == 0

    vod("DeleteMedia", {"FileId": file_id})
    pulled = vod("PullEvents")["EventSet"]
    assert [e["EventType"] for e in pulled] == ["FileDeleted"]
    deleted = pulled[0]["FileDeleteEvent"]
    assert deleted["FileIdSet"] == [file_id]
    assert deleted["FileDeleteResultInfo"] == [{"FileId": file_id, "DeleteParts": []}]
    vod("ConfirmEvents", {"EventHandles": [pulled[0]["EventHandle"]]})

    # Nothing queued: the request is held about 5 s, then answers with no events.
    started = time.monotonic()
    assert not vod("PullEvents")["EventSet"]
    assert 4.0 <= time.monotonic() - started < 9.0


def test_media_import_announces_a_new_file_upload(server: Server, short_clip: Path) -> None:
    """Importing is an upload: with the upload switch ON it queues NewFileUpload as
    CommitUpload does, in the transaction that creates the media item."""
    sub_app_id, vod = new_sub_app(server)
    vod("ModifyEventConfig", {"Mode": "PULL", "UploadMediaCompleteEventSwitch": "ON"})
    file_id = server.import_media(short_clip, sub_app_id)
    (event,) = vod("PullEvents")["EventSet"]
    assert event["EventType"] == "NewFileUpload"
    upload = event["FileUploadEvent"]
    assert (upload["FileId"], upload["ProcedureTaskId"]) == (file_id, "")
    info = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0]["BasicInfo"]
    assert upload["MediaBasicInfo"]["Name"] == info["Name"] == short_clip.stem
    assert upload["MediaBasicInfo"]["MediaUrl"] == info["MediaUrl"]
    assert upload["MetaData"]["Width"] == 320
    vod("ConfirmEvents", {"EventHandles": [event["EventHandle"]]})
    vod("ModifyEventConfig", {"UploadMediaCompleteEventSwitch": "OFF"})
    server.import_media(short_clip, sub_app_id)
    assert vod("DescribeEventsState")["CountOfEventsToPull"] == 0


def test_pull_long_poll_returns_when_the_task_finishes(server: Server, short_clip: Path) -> None:
    sub_app_id, vod = new_sub_app(server)
    vod("ModifyEventConfig", {"Mode": "PULL"})
    file_id = server.import_media(short_clip, sub_app_id)
    request = {
        "FileId": file_id,
        "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000, "EndTimeOffset": 1}]},
    }
    task_id = vod("ProcessMedia", request)["TaskId"]
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while not events and time.monotonic() < deadline:
        events = vod("PullEvents")["EventSet"] or []
    assert [e["ProcedureStateChangeEvent"]["TaskId"] for e in events] == [task_id]


# -- PUSH --------------------------------------------------------------------------------------


def test_push_delivers_a_signed_event(
    server: Server, short_clip: Path, receivers: Callable[..., Receiver]
) -> None:
    from tencentcloud.vod.v20180717 import models

    receiver = receivers()
    sub_app_id, vod = new_sub_app(server)
    vod("ModifyEventConfig", {"NotificationUrl": receiver.url, "SignKey": "Key123"})
    task_id = process(vod, server.import_media(short_clip, sub_app_id))
    wait_until(lambda: bool(state_hits(receiver, task_id)), 30, "the callback")
    time.sleep(0.5)
    (hit,) = receiver.hits  # exactly once
    assert hit.path == "/callback"
    assert hit.headers["Content-Type"] == "application/json"
    body = hit.body
    assert body["EventType"] == "ProcedureStateChanged"
    assert "EventHandle" not in body
    assert all(value is not None for value in body.values())
    assert set(body) == {"EventType", "ProcedureStateChangeEvent", "T", "Sign"}
    assert abs(body["T"] - (hit.at + 600)) < 30
    assert body["Sign"] == hashlib.md5(f"Key123{body['T']}".encode()).hexdigest()
    task = body["ProcedureStateChangeEvent"]
    assert (task["TaskId"], task["Status"], task["ErrCode"]) == (task_id, "FINISH", 0)
    assert task["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Status"] == "SUCCESS"
    assert task["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Output"]["Url"]
    # A receiver built on the SDK's models reads it.
    content = models.EventContent()
    with warnings.catch_warnings():  # T and Sign are not model fields: the SDK says so
        warnings.simplefilter("ignore")
        content._deserialize(body)
    assert content.ProcedureStateChangeEvent.TaskId == task_id
    assert content.ProcedureStateChangeEvent.MediaProcessResultSet[0].AnimatedGraphicTask.Status


def test_push_file_deleted_in_change_mode_order(
    server: Server, short_clip: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    sub_app_id, vod = new_sub_app(server)
    vod(
        "ModifyEventConfig",
        {"NotificationUrl": receiver.url, "DeleteMediaCompleteEventSwitch": "ON"},
    )
    file_id = server.import_media(short_clip, sub_app_id)
    request = {
        "FileId": file_id,
        "MediaProcessTask": {
            "AnimatedGraphicTaskSet": [
                {"Definition": 20000, "EndTimeOffset": 1},
                {"Definition": 20001, "EndTimeOffset": 1},
            ]
        },
        "TasksNotifyMode": "Change",
    }
    task_id = vod("ProcessMedia", request)["TaskId"]
    wait_for_task(vod, task_id)
    vod("DeleteMedia", {"FileId": file_id})
    wait_until(lambda: len(receiver.hits) >= 3, 30, "three callbacks")
    time.sleep(0.5)
    kinds = [
        (hit.body["EventType"], (hit.body.get("ProcedureStateChangeEvent") or {}).get("Status"))
        for hit in receiver.hits
    ]
    assert kinds == [
        ("ProcedureStateChanged", "PROCESSING"),
        ("ProcedureStateChanged", "FINISH"),
        ("FileDeleted", None),
    ]
    assert "T" not in receiver.hits[0].body  # no SignKey: unsigned
    assert receiver.hits[2].body["FileDeleteEvent"]["FileIdSet"] == [file_id]


def test_push_failure_is_retried(
    server: Server, short_clip: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(500)
    sub_app_id, vod = new_sub_app(server)
    vod("ModifyEventConfig", {"NotificationUrl": receiver.url})
    task_id = process(vod, server.import_media(short_clip, sub_app_id))
    wait_until(lambda: len(state_hits(receiver, task_id)) >= 2, 30, "the retry")
    first, second = state_hits(receiver, task_id)[:2]
    assert first.body == second.body
    assert second.at - first.at >= 0.25  # backed off
    time.sleep(1.0)
    assert len(receiver.hits) == 2  # the 200 ended it


def test_push_timeout_is_retried(
    server: Server, short_clip: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(("sleep", TIMEOUT_SECONDS + 2))
    sub_app_id, vod = new_sub_app(server)
    vod("ModifyEventConfig", {"NotificationUrl": receiver.url})
    task_id = process(vod, server.import_media(short_clip, sub_app_id))
    wait_until(lambda: len(state_hits(receiver, task_id)) >= 2, TIMEOUT_SECONDS + 30, "the retry")
    first, second = state_hits(receiver, task_id)[:2]
    assert second.at - first.at >= TIMEOUT_SECONDS - 0.2  # the first attempt was cut off


def dead_letters(server: Server, sub_app_id: int) -> list[dict[str, Any]]:
    done = anigraph(
        "events",
        "dead-letters",
        "--data-dir",
        server.data_dir,
        "--sub-app-id",
        str(sub_app_id),
        "--json",
    )
    return list(json.loads(done.stdout))


def test_redirects_are_not_followed_and_dead_letters_replay(
    hasty: Server, short_clip: Path, receivers: Callable[..., Receiver]
) -> None:
    canary = receivers()
    receiver = receivers(*[("redirect", canary.url)] * 1000)
    sub_app_id, vod = new_sub_app(hasty)
    vod("ModifyEventConfig", {"NotificationUrl": receiver.url})
    task_id = process(vod, hasty.import_media(short_clip, sub_app_id))
    wait_until(lambda: bool(dead_letters(hasty, sub_app_id)), 30, "a dead letter")
    (dead,) = dead_letters(hasty, sub_app_id)
    assert dead["EventType"] == "ProcedureStateChanged"
    assert "302" in dead["LastError"]
    attempts = len(receiver.hits)
    assert attempts >= 2 and dead["Attempts"] == attempts
    assert canary.hits == []  # the redirect was never followed
    time.sleep(1.0)
    assert len(receiver.hits) == attempts  # a dead letter is not retried

    receiver.script.clear()  # the receiver is fixed: it answers 200 from now on
    replayed = anigraph("events", "replay", str(dead["EventId"]), "--data-dir", hasty.data_dir)
    assert f"replaying event {dead['EventId']}" in replayed.stdout
    wait_until(lambda: len(receiver.hits) > attempts, 10, "the replayed callback")
    assert state_hits(receiver, task_id)[-1].body == receiver.hits[0].body
    wait_until(lambda: not dead_letters(hasty, sub_app_id), 10, "no dead letters")
    assert canary.hits == []


def test_replay_refuses_what_is_not_a_dead_letter(hasty: Server) -> None:
    done = anigraph("events", "replay", "999999", "--data-dir", hasty.data_dir, check=False)
    assert done.returncode == 1
    assert "not a dead letter" in done.stderr
    assert anigraph("events", "replay", "--data-dir", hasty.data_dir, check=False).returncode


def test_an_event_survives_kill_9_before_delivery(
    tmp_path: Path, short_clip: Path, receivers: Callable[..., Receiver]
) -> None:
    down = receivers()
    port = down.port
    url = down.url
    down.stop()  # the receiver is down: connections are refused
    server = event_server(tmp_path, retry=0.5, give_up=600)
    server.start()
    try:
        sub_app_id, vod = new_sub_app(server)
        vod("ModifyEventConfig", {"NotificationUrl": url})
        task_id = process(vod, server.import_media(short_clip, sub_app_id))
        time.sleep(1.0)  # an attempt or two fail while the receiver is down
        server.kill()
        receiver = receivers(port=port)
        server.start()
        wait_until(lambda: bool(state_hits(receiver, task_id)), 30, "delivery after restart")
        time.sleep(1.0)
        assert len(state_hits(receiver, task_id)) == 1
        assert receiver.hits[0].body["ProcedureStateChangeEvent"]["Status"] == "FINISH"
    finally:
        if server.process is not None:
            server.stop()
