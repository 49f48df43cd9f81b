"""What a newcomer meets first in the console, in headless Chromium against a real server.

Each test asserts what its screenshot (``test-artifacts/console/3x-*.png``) shows: one page drawn
once, media listed where media exist, failures in red, outputs and ids that fit the page.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from service_harness import Server, Vod, wait_for_task

from media_factory import make_clip

IN_VIEW = """el => {
  const box = el.getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}"""


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def _nav(page: Any, name: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()


def _sign_in(page: Any, server: Server, hash_: str = "") -> None:
    key = server.default_key()
    page.goto(f"{server.url}/console{hash_}")
    page.get_by_label("SecretId").fill(key["SecretId"])
    page.get_by_label("SecretKey").fill(key["SecretKey"])
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who").get_by_text("SubAppId").wait_for()


def _api_calls(page: Any, server: Server) -> Counter[str]:
    """Counts of API actions the page sends from now on."""
    seen: Counter[str] = Counter()

    def on_request(request: Any) -> None:
        action = request.headers.get("x-tc-action")
        if request.url == f"{server.url}/" and action:
            seen[action] += 1

    page.on("request", on_request)
    return seen


def _start(vod: Vod, file_id: str, *items: dict[str, Any]) -> str:
    """ProcessMedia with these AnimatedGraphicTaskSet items (preset GIF, whole clip if none)."""
    task_set = list(items) or [{"Definition": 20000}]
    params = {"FileId": file_id, "MediaProcessTask": {"AnimatedGraphicTaskSet": task_set}}
    return str(vod("ProcessMedia", params)["TaskId"])


@pytest.fixture(scope="module")
def vod(console_server: Server) -> Vod:
    return Vod(console_server, console_server.default_key())


@pytest.fixture(scope="module")
def clip_id(console_server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    clip = make_clip(
        tmp_path_factory.mktemp("clips") / "newcomer.mp4", seconds=2.0, fps=10, width=160, height=90
    )
    return console_server.import_media(clip)


def test_browser_at_the_root_lands_on_the_console(page: Any, console_server: Server) -> None:
    page.goto(f"{console_server.url}/")
    assert page.url == f"{console_server.url}/console"
    page.get_by_role("button", name="Sign in").wait_for()


def test_media_page_is_drawn_once_after_sign_in(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, clip_id: str
) -> None:
    calls = _api_calls(page, console_server)
    _sign_in(page, console_server)
    page.get_by_role("link", name=clip_id).wait_for()
    page.wait_for_load_state("networkidle")
    _shot(page, artifacts, "30-signed-in-once")
    assert page.locator("form[aria-label='Upload']").count() == 1
    assert page.get_by_role("heading", level=1).count() == 1
    assert page.locator("#main table").count() == 1
    assert calls["SearchMedia"] == 1, calls
    assert calls["DescribeProcedureTemplates"] == 1, calls
    assert console_log.errors == []


def test_a_page_answered_late_does_not_draw_into_the_next(
    page: Any, console_server: Server, console_log: Any, artifacts: Path
) -> None:
    held: list[Any] = []
    slow = {"SearchMedia", "DescribeProcedureTemplates"}

    def hold(route: Any) -> None:
        if slow and route.request.headers.get("x-tc-action") in slow:
            held.append(route)
        else:
            route.continue_()

    page.route(lambda url: url == f"{console_server.url}/", hold)
    _sign_in(page, console_server)
    page.wait_for_function("() => document.querySelector('h1')?.textContent === 'Media'")
    _nav(page, "Events")
    page.get_by_label("Mode").wait_for()
    assert held, "the Media page's requests were not held"
    slow.clear()
    for route in held:
        route.continue_()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    _shot(page, artifacts, "31-late-answer")
    assert [h.inner_text() for h in page.get_by_role("heading", level=1).all()] == ["Events"]
    assert page.locator("form[aria-label='Upload']").count() == 0
    assert console_log.errors == []


def test_process_from_the_nav_bar_lists_the_media(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, clip_id: str
) -> None:
    """Media imported elsewhere (CLI, SDK) than this tab is there to choose."""
    _sign_in(page, console_server, "#/templates")
    _nav(page, "Process")
    page.get_by_role("button", name="Start processing").wait_for()
    _shot(page, artifacts, "32-process-from-nav")
    options = page.get_by_label("Media").locator("option").all_inner_texts()
    assert any(clip_id in text and "newcomer" in text for text in options), options
    assert page.get_by_text("Upload a video on the Media page first").count() == 0
    assert console_log.errors == []


def _process_page(page: Any, server: Server, file_id: str) -> tuple[Any, Any]:
    _sign_in(page, server, f"#/process/{file_id}")
    start, end = page.get_by_label("Start", exact=True), page.get_by_label("End", exact=True)
    start.wait_for()
    page.get_by_role("checkbox", name=re.compile(r"^Preset GIF")).check()
    return start, end


def test_range_past_the_duration_is_flagged(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, clip_id: str
) -> None:
    calls = _api_calls(page, console_server)
    start, end = _process_page(page, console_server, clip_id)
    end.fill("9")  # past the 2 s clip: allowed (the API clamps it), but said
    end_hint = page.locator("#" + end.get_attribute("aria-describedby"))
    assert "Past the end" in end_hint.inner_text() and "2 s" in end_hint.inner_text()
    assert end.get_attribute("aria-invalid") is None

    start.fill("5")  # an empty segment: refused before any request
    start_error = page.locator("#" + start.get_attribute("aria-describedby"))
    assert "Past the end" in start_error.inner_text()
    assert start.get_attribute("aria-invalid") == "true"
    page.get_by_role("button", name="Start processing").click()
    page.get_by_text("Fix the range first.").wait_for()
    assert calls["ProcessMedia"] == 0
    _shot(page, artifacts, "33-range-past-the-end")
    start.fill("0.5")
    assert start.get_attribute("aria-invalid") is None
    assert console_log.errors == []


def test_started_notice_is_in_view(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, clip_id: str
) -> None:
    start, end = _process_page(page, console_server, clip_id)
    start.fill("0.5")
    end.fill("1.5")
    page.get_by_role("button", name="Start processing").click()
    started = page.get_by_text("Started task")
    started.wait_for()
    assert started.evaluate(IN_VIEW), "the 'Started task' notice is out of view"
    _shot(page, artifacts, "34-started-in-view")
    assert console_log.errors == []


def test_long_task_ids_stay_on_one_line(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, vod: Vod, clip_id: str
) -> None:
    task_id = _start(vod, clip_id)
    _sign_in(page, console_server, "#/tasks")
    link = page.locator(f"a[href='#/tasks/{task_id}']")
    link.wait_for()
    height = link.evaluate("a => a.getBoundingClientRect().height")
    line = link.evaluate("a => parseFloat(getComputedStyle(a).lineHeight) || 20")
    assert height < 1.6 * line, (height, line)
    assert link.get_attribute("title") == task_id
    assert link.inner_text() == task_id  # cut on screen only: copying gives the whole id
    _shot(page, artifacts, "35-task-id-one-line")
    assert console_log.errors == []


def test_a_failed_subtask_is_shown_as_a_failure(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, vod: Vod, clip_id: str
) -> None:
    task_id = _start(
        vod,
        clip_id,
        {"Definition": 20000, "StartTimeOffset": 0, "EndTimeOffset": 1},
        {"Definition": 20001, "StartTimeOffset": 50, "EndTimeOffset": 60},
    )
    detail = wait_for_task(vod, task_id)
    states = [r["AnimatedGraphicTask"] for r in detail["ProcedureTask"]["MediaProcessResultSet"]]
    assert detail["Status"] == "FINISH" and [s["Status"] for s in states] == ["SUCCESS", "FAIL"]
    failure = states[1]

    _sign_in(page, console_server, "#/tasks")
    row = page.locator("tr", has=page.locator(f"a[href='#/tasks/{task_id}']"))
    row.wait_for()
    _shot(page, artifacts, "36-tasks-failed")
    badge = row.locator("td[data-label='Status'] .badge")
    assert badge.inner_text() == "PARTLY FAILED"
    assert "fail" in badge.get_attribute("class").split()
    assert row.locator("progress").count() == 0
    assert row.locator("td[data-label='Subtasks'] .badge").all_inner_texts() == ["SUCCESS", "FAIL"]
    assert failure["ErrCodeExt"] in row.inner_text()

    row.locator(f"a[href='#/tasks/{task_id}']").click()
    failed = page.locator("li.subtask.failed")
    failed.wait_for()
    _shot(page, artifacts, "37-task-failed-detail")
    assert page.locator("dd .badge.fail").first.inner_text() == "PARTLY FAILED"
    text = failed.inner_text()
    assert "FAIL" in text and failure["ErrCodeExt"] in text and failure["Message"] in text
    assert failed.locator("progress").count() == 0
    assert "will retry" not in page.locator("#main").inner_text()
    assert console_log.errors == []


def test_outputs_fit_the_page(
    page: Any,
    console_server: Server,
    console_log: Any,
    artifacts: Path,
    vod: Vod,
    tmp_path: Path,
) -> None:
    """A tall output (200 × 1200, the source size) is drawn at most 360 px tall."""
    clip = make_clip(tmp_path / "tall.mp4", seconds=1.0, fps=4, width=200, height=1200)
    file_id = console_server.import_media(clip)
    task_id = _start(vod, file_id)
    assert wait_for_task(vod, task_id)["Status"] == "FINISH"
    _sign_in(page, console_server, f"#/tasks/{task_id}")
    for name in ("38-task-output-fits", "39-media-output-fits"):
        image = page.locator("figure.output img").first
        image.wait_for()
        page.wait_for_function(
            "img => img.complete && img.naturalHeight > 0", arg=image.element_handle()
        )
        assert image.evaluate("img => img.naturalHeight") == 1200
        box = image.bounding_box()
        assert box["height"] <= 361 and box["width"] == pytest.approx(box["height"] / 6, abs=2)
        assert page.evaluate("document.documentElement.scrollHeight") < 1800
        _shot(page, artifacts, name)
        if name.startswith("38"):
            page.locator("a[href^='#/media/']").first.click()
            page.get_by_role("heading", name=re.compile(r"Animated outputs")).wait_for()
    assert console_log.errors == []


def test_wrong_key_says_the_pair_is_wrong(
    page: Any, console_server: Server, console_log: Any, artifacts: Path
) -> None:
    key = console_server.default_key()
    page.goto(f"{console_server.url}/console")
    page.get_by_label("SecretId").fill(key["SecretId"])
    page.get_by_label("SecretKey").fill("not-the-secret-key-of-this-id")
    page.get_by_role("button", name="Sign in").click()
    alert = page.locator(".notice.error")
    alert.wait_for()
    _shot(page, artifacts, "40-wrong-key")
    assert "SecretId/SecretKey pair is wrong" in alert.inner_text()
    assert "check the signature" not in alert.inner_text()
    assert console_log.errors == []


def test_notification_url_field_is_wide(
    page: Any, console_server: Server, console_log: Any, artifacts: Path
) -> None:
    _sign_in(page, console_server, "#/events")
    url = page.get_by_label("NotificationUrl")
    url.fill("https://hooks.example.com/anigraph/events/production?tenant=1500000001")
    _shot(page, artifacts, "41-events-url")
    assert url.evaluate("el => el.scrollWidth <= el.clientWidth"), "the URL does not fit"
    assert url.bounding_box()["width"] >= 600
    assert console_log.errors == []
