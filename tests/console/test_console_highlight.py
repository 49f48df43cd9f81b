"""The Process page shows which window a Highlight template chose (headless Chromium)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from service_harness import Server, Vod, wait_for_task

from structured_clips import black, panning, still, title, write_scenes


def test_process_page_shows_the_window_highlight_chose(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, tmp_path: Path
) -> None:
    key = console_server.default_key()
    vod = Vod(console_server, key)
    created = vod.client.call_json(
        "CreateAnimatedGraphicsTemplate",
        {"Name": "best three", "Format": "gif", "Fps": 10, "Width": 160,
         "SegmentMode": "Highlight", "Duration": 3},
    )  # fmt: skip
    definition = created["Response"]["Definition"]
    # Black 0-2 s, a still title 2-5 s, motion 5-8 s, a still picture 8-12 s.
    clip = write_scenes(
        tmp_path / "highlight-clip.mp4",
        [(2, black), (3, title), (3, panning(1)), (4, still(2))],
        fps=10,
    )
    file_id = console_server.import_media(clip)

    page.goto(f"{console_server.url}/console")
    page.get_by_label("SecretId").fill(key["SecretId"])
    page.get_by_label("SecretKey").fill(key["SecretKey"])
    page.get_by_role("button", name="Sign in").click()
    # From the media list, as a user would: the clip's own Process button.
    page.get_by_role("navigation").get_by_role("link", name="Media", exact=True).click()
    row = page.get_by_role("row").filter(has_text=file_id)
    row.get_by_role("link", name="Process").first.click()
    page.get_by_role("heading", name="highlight-clip").wait_for()
    page.get_by_label("Start", exact=True).fill("0")
    page.get_by_label("End", exact=True).fill("12")
    page.get_by_role("checkbox", name=re.compile(r"^best three")).check()
    page.get_by_role("button", name="Start processing").click()
    line = page.get_by_role("list", name="Segments used").get_by_role("listitem").first
    page.get_by_text(re.compile(rf"Template {definition} \(Highlight\): chose")).wait_for(
        timeout=60_000
    )
    page.screenshot(path=str(artifacts / "20-process-highlight.png"), full_page=True)

    task_id = page.locator("a[href^='#/tasks/']").first.inner_text()
    detail = wait_for_task(vod, task_id)
    output = detail["ProcedureTask"]["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Output"]
    shown = re.search(r"chose (\d+\.\d\d)–(\d+\.\d\d) s", line.inner_text())
    assert shown is not None
    assert float(shown[1]) == round(output["StartTimeOffset"], 2)
    assert float(shown[2]) == round(output["EndTimeOffset"], 2)
    assert abs(output["StartTimeOffset"] - 5.0) <= 0.3  # on the motion, not at 0 as asked
    # "Show" takes the player to the chosen start.
    line.get_by_role("button", name="Show").click()
    played = page.get_by_label("Source video").evaluate("v => v.currentTime")
    assert abs(played - output["StartTimeOffset"]) < 0.05
    assert console_log.errors == []
