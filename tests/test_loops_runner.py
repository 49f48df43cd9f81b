"""Highlight and loops through the worker: Tencent's StartTimeOffset/EndTimeOffset report the
window chosen, the measured fields come with LoopSeam, and a plain template stays Tencent's."""

from __future__ import annotations

from pathlib import Path

import pytest

from anigraph.jobs import leases
from anigraph.jobs.pool import new_owner
from anigraph.jobs.runner import Outcome, run_claimed
from anigraph.metrics import Metrics
from jobs_fixtures import add_media, add_task, add_template, entry, make_ctx, sub
from structured_clips import black, panning, still, title, write_scenes


def test_highlight_boomerang_output_reports_the_window_and_the_seam(tmp_path: Path) -> None:
    # Black 0-2 s, a still title 2-4 s, motion 4-7 s, a still 7-9 s.
    clip = write_scenes(
        tmp_path / "burst.mp4", [(2, black), (2, title), (3, panning(1)), (2, still(2))], fps=10
    )
    ctx = make_ctx(tmp_path)
    file_id = add_media(ctx, clip)
    plain = add_template(ctx, format="gif", width=80, fps=10)
    best = add_template(
        ctx, format="gif", width=80, fps=10, segment_mode="Highlight", duration=2.0,
        loop_mode="Boomerang",
    )  # fmt: skip
    task_id = add_task(ctx, file_id, [entry(plain, 0, 2), entry(best, 0, 9)])
    owner = new_owner(0)
    assert leases.claim_next(ctx, owner) == task_id
    assert run_claimed(ctx, task_id, owner, Metrics()) is Outcome.FINISHED
    fixed, chosen = sub(ctx, task_id, 0), sub(ctx, task_id, 1)
    assert fixed["Status"] == chosen["Status"] == "SUCCESS"
    assert (fixed["Output"]["StartTimeOffset"], fixed["Output"]["EndTimeOffset"]) == (0, 2)
    assert "LoopSeam" not in fixed["Output"] and "FrameCount" not in fixed["Output"]
    output = chosen["Output"]
    assert 4.0 - 0.3 <= output["StartTimeOffset"] <= 5.0 + 0.3
    assert output["EndTimeOffset"] - output["StartTimeOffset"] == pytest.approx(2.0, abs=0.01)
    assert output["FrameCount"] == 2 * 20 - 2
    assert 0 <= output["LoopSeam"] <= 1
