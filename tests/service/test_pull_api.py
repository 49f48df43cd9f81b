"""PullUpload and ProcessMedia with a Url, against a real server allowed to reach loopback."""

from __future__ import annotations

import functools
import secrets
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from service_harness import Server, Vod, error_code, free_port, wait_for_task

from media_factory import make_clip, make_still_image


class Files:
    """A loopback HTTP server over a folder, counting hits per path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: dict[str, int] = {}
        files = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                files.hits[self.path] = files.hits.get(self.path, 0) + 1
                if self.path == "/busy.mp4":
                    self.send_error(503)
                    return
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    root = tmp_path_factory.mktemp("web")
    make_clip(root / "clip.mp4", seconds=2.0, fps=25, width=320, height=180)
    (root / "notvideo.mp4").write_bytes(b"hello" * 1000)
    make_still_image(root / "still.png")
    # One continuous MPEG-TS stream cut at a packet boundary, as a segmenter would.
    whole = make_clip(root / "whole.ts", seconds=2.0, fps=25, width=320, height=180).read_bytes()
    cut = len(whole) // 2 // 188 * 188
    (root / "seg0.ts").write_bytes(whole[:cut])
    (root / "seg1.ts").write_bytes(whole[cut:])
    (root / "list.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n"
        "#EXTINF:1.0,\nseg0.ts\n#EXTINF:1.0,\nseg1.ts\n#EXT-X-ENDLIST\n"
    )
    served = Files(root)
    yield served
    served.close()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("pull") / "data",
        free_port(),
        ["--allow-private-networks", "127.0.0.1/32", "--retry-backoff-seconds", "0.2"],
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pvod(open_server: Server) -> Vod:
    return Vod(open_server, open_server.default_key())


def test_pull_upload_makes_media(pvod: Vod, files: Files) -> None:
    task_id = pvod(
        "PullUpload",
        {"MediaUrl": files.url("clip.mp4"), "MediaName": "pulled", "SessionContext": "sc"},
    )["TaskId"]
    assert "-pull-" in task_id
    detail = wait_for_task(pvod, task_id)
    assert detail["TaskType"] == "PullUpload" and detail["ProcedureTask"] is None
    pulled = detail["PullUploadTask"]
    assert (pulled["Status"], pulled["ErrCode"], pulled["SessionContext"]) == ("FINISH", 0, "sc")
    assert pulled["MetaData"]["Width"] == 320 and pulled["MediaBasicInfo"]["Name"] == "pulled"
    info = pvod("DescribeMediaInfos", {"FileIds": [pulled["FileId"]]})["MediaInfoSet"][0]
    original = (files.root / "clip.mp4").read_bytes()
    assert httpx.get(info["BasicInfo"]["MediaUrl"]).content == original
    assert httpx.get(pulled["FileUrl"]).content == original


def test_pull_upload_of_hls(pvod: Vod, files: Files) -> None:
    """The playlist and its segments are fetched by us; the media is one local MPEG-TS file."""
    task_id = pvod("PullUpload", {"MediaUrl": files.url("list.m3u8")})["TaskId"]
    pulled = wait_for_task(pvod, task_id)["PullUploadTask"]
    assert pulled["ErrCode"] == 0, pulled
    assert pulled["MetaData"]["Duration"] == pytest.approx(2.0, abs=0.2)
    assert files.hits.get("/seg0.ts") and files.hits.get("/seg1.ts")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("missing.mp4", "DownloadNotAccessible"), ("notvideo.mp4", "ContentMalformed")],
)
def test_pull_failures_end_the_task(pvod: Vod, files: Files, name: str, fragment: str) -> None:
    task_id = pvod("PullUpload", {"MediaUrl": files.url(name)})["TaskId"]
    pulled = wait_for_task(pvod, task_id)["PullUploadTask"]
    assert pulled["Status"] == "FINISH" and pulled["ErrCode"] == 60000
    assert fragment in pulled["Message"] and pulled["FileId"] == ""


def test_a_transient_failure_ends_as_final_after_its_attempts(pvod: Vod, files: Files) -> None:
    """503 is worth retrying; once the attempts are spent the task ends, and says so."""
    task_id = pvod("PullUpload", {"MediaUrl": files.url("busy.mp4")})["TaskId"]
    pulled = wait_for_task(pvod, task_id)["PullUploadTask"]
    assert pulled["Status"] == "FINISH" and pulled["ErrCode"] == 70000, pulled
    assert files.hits["/busy.mp4"] == 3
    assert "will retry" not in pulled["Message"]
    assert "gave up after 3 attempts" in pulled["Message"]


def test_pull_of_a_still_image_fails_at_once(pvod: Vod, files: Files) -> None:
    """Bad input, not a transient failure: one download, no retry, SourceFileError."""
    task_id = pvod("PullUpload", {"MediaUrl": files.url("still.png")})["TaskId"]
    pulled = wait_for_task(pvod, task_id)["PullUploadTask"]
    assert (pulled["Status"], pulled["ErrCode"], pulled["FileId"]) == ("FINISH", 60000, "")
    assert "ContentUnsupported" in pulled["Message"]
    assert files.hits["/still.png"] == 1


def test_process_media_with_url(pvod: Vod, files: Files) -> None:
    task_id = pvod(
        "ProcessMedia",
        {
            "Url": files.url("clip.mp4"),
            "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20001}]},
        },
    )["TaskId"]
    procedure = wait_for_task(pvod, task_id)["ProcedureTask"]
    assert procedure["FileId"] and procedure["MetaData"]["Width"] == 320
    (result,) = procedure["MediaProcessResultSet"]
    assert result["AnimatedGraphicTask"]["Status"] == "SUCCESS"
    assert httpx.get(result["AnimatedGraphicTask"]["Output"]["Url"]).status_code == 200


def test_process_media_with_a_bad_url_fails_its_subtasks(pvod: Vod, files: Files) -> None:
    task_id = pvod(
        "ProcessMedia",
        {
            "Url": files.url("missing.mp4"),
            "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
        },
    )["TaskId"]
    (result,) = wait_for_task(pvod, task_id)["ProcedureTask"]["MediaProcessResultSet"]
    assert result["AnimatedGraphicTask"]["ErrCodeExt"] == "SourceFileError.DownloadNotAccessible"


def test_pull_request_errors(pvod: Vod) -> None:
    for params, code in (
        ({"MediaUrl": "ftp://example.com/a.mp4"}, "InvalidParameterValue.MediaUrl"),
        ({"MediaUrl": "http://user:pw@example.com/a.mp4"}, "InvalidParameterValue.MediaUrl"),
        ({"MediaUrl": "file:///etc/passwd"}, "InvalidParameterValue.MediaUrl"),
        (
            {"MediaUrl": "http://example.com/a.mp4", "SessionId": "x" * 51},
            "InvalidParameterValue.SessionIdTooLong",
        ),
    ):
        assert error_code(lambda p=params: pvod("PullUpload", p)) == code


def test_pull_session_id_dedupe(pvod: Vod, files: Files) -> None:
    session_id = f"pull-{secrets.token_hex(4)}"
    first = pvod("PullUpload", {"MediaUrl": files.url("clip.mp4"), "SessionId": session_id})
    assert first["TaskId"]
    assert (
        error_code(
            lambda: pvod("PullUpload", {"MediaUrl": files.url("clip.mp4"), "SessionId": session_id})
        )
        == "InvalidParameterValue.SessionId"
    )
    wait_for_task(pvod, first["TaskId"])


def test_default_policy_never_reaches_loopback(vod: Vod, files: Files) -> None:
    """The shared server has no allow-list: loopback is refused, the canary sees no request."""
    before = dict(files.hits)
    task_id = vod("PullUpload", {"MediaUrl": files.url("clip.mp4")})["TaskId"]
    pulled = wait_for_task(vod, task_id)["PullUploadTask"]
    assert pulled["ErrCode"] != 0 and pulled["FileId"] == ""
    assert files.hits == before


def test_pull_runs_its_task_flow_and_reports_pull_complete(pvod: Vod, files: Files) -> None:
    name = f"pf{secrets.token_hex(4)}"
    pvod(
        "CreateProcedureTemplate",
        {"Name": name, "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]}},
    )
    pvod("ModifyEventConfig", {"Mode": "PULL", "UploadMediaCompleteEventSwitch": "ON"})
    assert (
        error_code(
            lambda: pvod("PullUpload", {"MediaUrl": files.url("clip.mp4"), "Procedure": "nope"})
        )
        == "InvalidParameterValue.Procedure"
    )
    task_id = pvod("PullUpload", {"MediaUrl": files.url("clip.mp4"), "Procedure": name})["TaskId"]
    pulled = wait_for_task(pvod, task_id)["PullUploadTask"]
    assert pulled["ErrCode"] == 0 and pulled["ProcedureTaskId"]
    flow = wait_for_task(pvod, pulled["ProcedureTaskId"])["ProcedureTask"]
    assert flow["FileId"] == pulled["FileId"]
    assert flow["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Status"] == "SUCCESS"
    events: list[dict] = []  # type: ignore[type-arg]
    for _ in range(5):
        batch = pvod("PullEvents").get("EventSet") or []
        events += batch
        if batch:
            pvod("ConfirmEvents", {"EventHandles": [e["EventHandle"] for e in batch]})
        if any(e["EventType"] == "PullComplete" for e in events):
            break
    complete = [e for e in events if e["EventType"] == "PullComplete"]
    assert complete and complete[0]["PullCompleteEvent"]["TaskId"] == task_id
    assert complete[0]["PullCompleteEvent"]["ProcedureTaskId"] == pulled["ProcedureTaskId"]
