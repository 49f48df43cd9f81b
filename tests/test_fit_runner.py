"""MaxSize through the worker: the subtask's Output carries the measured fields, a plain template's
Output stays Tencent's, and an unreachable budget fails the subtask without a stored file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anigraph.jobs import leases
from anigraph.jobs.pool import new_owner
from anigraph.jobs.runner import Outcome, run_claimed
from anigraph.metrics import Metrics
from jobs_fixtures import add_media, add_task, add_template, entry, make_ctx, outputs, sub
from test_jobs import OUTPUT_KEYS as TENCENT_KEYS

# Every extension job also reports its loop seam, whatever it set.
MEASURED_KEYS = {"FrameCount", "Fps", "Ssim", "Adjustments", "LoopSeam"}


def run_one(tmp_path: Path, source: Path, **budgeted: float) -> list[dict[str, Any]]:
    ctx = make_ctx(tmp_path)
    file_id = add_media(ctx, source)
    plain = add_template(ctx, format="gif", width=160, fps=5)
    fitted = add_template(ctx, format="gif", width=160, fps=5, **budgeted)
    task_id = add_task(ctx, file_id, [entry(plain, 1.0, 2.0), entry(fitted, 1.0, 2.0)])
    owner = new_owner(0)
    assert leases.claim_next(ctx, owner) == task_id
    assert run_claimed(ctx, task_id, owner, Metrics()) is Outcome.FINISHED
    return [sub(ctx, task_id, index) for index in (0, 1)] + [
        {"outputs": len(outputs(ctx, task_id))}
    ]


def test_a_budget_template_gets_measured_fields(
    tmp_path: Path, real_clips: dict[str, Path]
) -> None:
    plain, fitted, stored = run_one(tmp_path, real_clips["bikes"], max_size=12_000)
    assert plain["Status"] == fitted["Status"] == "SUCCESS"
    assert set(plain["Output"]) == TENCENT_KEYS
    output = fitted["Output"]
    assert set(output) == TENCENT_KEYS | MEASURED_KEYS
    assert output["Size"] <= 12_000 < plain["Output"]["Size"]
    assert 0.5 < output["Ssim"] <= 1.0
    assert output["Adjustments"] and all(isinstance(a, str) for a in output["Adjustments"])
    assert output["FrameCount"] >= 1 and output["Fps"] > 0
    assert stored == {"outputs": 2}


def test_an_unreachable_budget_fails_the_subtask_and_stores_nothing(
    tmp_path: Path, real_clips: dict[str, Path]
) -> None:
    plain, fitted, stored = run_one(tmp_path, real_clips["bikes"], max_size=300)
    assert plain["Status"] == "SUCCESS"
    assert fitted["Status"] == "FAIL"
    assert fitted["ErrCodeExt"] == "InvalidInput.ResultFileSizeTooLarge"
    assert "smallest output reached is" in fitted["Message"]
    assert fitted.get("Output") in (None, {})
    assert stored == {"outputs": 1}
