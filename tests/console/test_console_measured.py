"""The console shows the measured result (Ssim, Adjustments, LoopSeam) of a MaxSize output on
the task and media detail pages, and nothing of the kind for a plain template's output."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from service_harness import Server, Vod, wait_for_task

BUDGET = 12_000


def _budget_task(server: Server, clip: Path) -> tuple[str, str, dict[str, Any]]:
    vod = Vod(server, server.default_key())
    file_id = server.import_media(clip)
    definition = vod("CreateAnimatedGraphicsTemplate", {"Fps": 5, "Width": 160, "Name": "fit"})[
        "Definition"
    ]
    # MaxSize goes straight into the row: the template API's field is not what is tested here.
    with sqlite3.connect(server.data_dir / "anigraph.db") as db:
        db.execute(
            "UPDATE animated_graphics_templates SET max_size = ? WHERE definition = ?",
            (BUDGET, definition),
        )
    answer = vod.client.call_json(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": definition, "StartTimeOffset": 1, "EndTimeOffset": 2},
                    {"Definition": 20000, "StartTimeOffset": 1, "EndTimeOffset": 2},
                ]
            },
        },
    )
    task_id = answer["Response"]["TaskId"]
    wait_for_task(vod, task_id)
    detail = vod.client.call_json("DescribeTaskDetail", {"TaskId": task_id})["Response"]
    results = detail["ProcedureTask"]["MediaProcessResultSet"]
    return task_id, file_id, results[0]["AnimatedGraphicTask"]["Output"]


def _facts(card: Any) -> dict[str, str]:
    names = card.locator("dt").all_inner_texts()
    values = card.locator("dd").all_inner_texts()
    return dict(zip(names, values, strict=True))


def test_task_and_media_detail_show_ssim_and_adjustments(
    page: Any,
    console_server: Server,
    console_log: Any,
    real_clips: dict[str, Path],
) -> None:
    task_id, file_id, output = _budget_task(console_server, real_clips["bikes"])
    assert output["Size"] <= BUDGET and output["Adjustments"]
    key = console_server.default_key()
    page.goto(f"{console_server.url}/console")
    page.get_by_label("SecretId").fill(key["SecretId"])
    page.get_by_label("SecretKey").fill(key["SecretKey"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation").get_by_role("link", name="Tasks", exact=True).wait_for()

    for route in (f"#/tasks/{task_id}", f"#/media/{file_id}"):
        page.goto(f"{console_server.url}/console{route}")
        cards = page.locator("figure.output")
        cards.nth(1).wait_for(timeout=30_000)
        by_definition = {_facts(cards.nth(i))["Template"]: _facts(cards.nth(i)) for i in (0, 1)}
        measured = by_definition[str(output["Definition"])]
        assert measured["SSIM"] == f"{output['Ssim']:.4f}"
        assert measured["Adjustments"] == ", ".join(output["Adjustments"])
        assert re.fullmatch(r"\d+ at [\d.]+ fps", measured["Frames"])
        assert measured["Loop seam"] == f"{output['LoopSeam']:.4f}"
        plain = by_definition["20000"]
        assert not {"SSIM", "Adjustments", "Frames", "Loop seam"} & set(plain), route
    assert console_log.errors == []
