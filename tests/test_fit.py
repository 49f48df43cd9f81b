"""MaxSize and QualityTarget in the engine (media.fit) and the measured result (media.measure).

Real footage (bikes, 1.5 s at 240 px, 10 fps): its plain GIF is ~380 KB and its plain WebP ~60 KB,
so budgets well under those force the search to give something up.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media import fit as fit_module
from anigraph.media.animate import animate
from anigraph.media.fit_probe import Probe, gif_frame_sizes
from anigraph.media.measure import output_ssim, sample_indices
from anigraph.media.types import AnimateParams, OutputFormat
from media_factory import decode_animation


def template(fmt: OutputFormat, **fields: Any) -> AnimateParams:
    return AnimateParams(format=fmt, width=240, fps=10, start=1.0, end=2.5, **fields)


@pytest.fixture(scope="module")
def bikes(real_clips: dict[str, Path]) -> Path:
    return real_clips["bikes"]


@pytest.fixture(scope="module")
def plain_sizes(bikes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[OutputFormat, int]:
    folder = tmp_path_factory.mktemp("plain")
    return {
        fmt: animate(bikes, folder / f"plain.{fmt}", template(fmt)).Size
        for fmt in (OutputFormat.GIF, OutputFormat.WEBP)
    }


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"max_size": -1}, "max_size"),
        ({"quality_target": 0.5}, "quality_target"),
        ({"quality_target": 0.995}, "quality_target"),
        ({"quality_target": 1.0}, "quality_target"),
    ],
)
def test_out_of_range_fields_are_configuration_errors(
    bikes: Path, tmp_path: Path, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(TaskError) as caught:
        animate(bikes, tmp_path / "out.gif", template(OutputFormat.GIF, **fields))
    assert caught.value.code is ErrCodeExt.CONFIGURATION_UNSUPPORTED
    assert problem in caught.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", [OutputFormat.GIF, OutputFormat.WEBP])
def test_budget_is_never_exceeded_and_mostly_used(
    bikes: Path, tmp_path: Path, plain_sizes: dict[OutputFormat, int], fmt: OutputFormat
) -> None:
    budget = plain_sizes[fmt] // 3
    out = tmp_path / f"out.{fmt}"
    result = animate(bikes, out, template(fmt, max_size=budget))
    assert out.stat().st_size == result.Size <= budget
    assert result.Size >= 0.5 * budget, f"{result.Size} of {budget}: the budget is wasted"
    assert result.Adjustments, "something had to be given up"
    assert result.Ssim is not None and 0.5 < result.Ssim <= 1.0
    shown = decode_animation(out)
    assert (shown.width, shown.height) == (result.Width, result.Height)
    assert len(shown.frames) <= result.FrameCount
    assert result.FrameCount == round(result.Fps * result.Duration)
    assert leftovers(tmp_path) == []


def test_budget_holds_when_the_estimates_are_far_too_low(
    bikes: Path, tmp_path: Path, plain_sizes: dict[OutputFormat, int], monkeypatch: Any
) -> None:
    real = fit_module.run_probe

    def optimistic(*args: Any, **kwargs: Any) -> Probe:
        probe = real(*args, **kwargs)
        return replace(probe, estimate=probe.estimate / 4)

    monkeypatch.setattr(fit_module, "run_probe", optimistic)
    budget = plain_sizes[OutputFormat.GIF] // 2
    out = tmp_path / "out.gif"
    result = animate(bikes, out, template(OutputFormat.GIF, max_size=budget))
    assert out.stat().st_size == result.Size <= budget
    assert leftovers(tmp_path) == []


def test_a_budget_above_the_plain_size_changes_nothing(
    bikes: Path, tmp_path: Path, plain_sizes: dict[OutputFormat, int]
) -> None:
    plain = plain_sizes[OutputFormat.WEBP]
    result = animate(bikes, tmp_path / "out.webp", template(OutputFormat.WEBP, max_size=plain * 2))
    assert result.Adjustments == ()
    assert abs(result.Size - plain) <= plain * 0.02  # the same settings: the same file
    assert result.Ssim is not None and result.Ssim > 0.9


def test_an_unreachable_budget_fails_with_the_smallest_size(bikes: Path, tmp_path: Path) -> None:
    with pytest.raises(TaskError) as caught:
        animate(bikes, tmp_path / "out.gif", template(OutputFormat.GIF, max_size=600))
    assert caught.value.code is ErrCodeExt.RESULT_FILE_TOO_LARGE
    assert "MaxSize of 600 bytes cannot be met" in caught.value.message
    smallest = int(caught.value.message.split("reached is ")[1].split()[0])
    assert smallest > 600
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", [0.85, 0.95])
def test_quality_target_is_reached_by_a_smaller_file(
    bikes: Path, tmp_path: Path, target: float
) -> None:
    best = animate(bikes, tmp_path / "q100.webp", template(OutputFormat.WEBP, quality=100))
    result = animate(bikes, tmp_path / "t.webp", template(OutputFormat.WEBP, quality_target=target))
    assert result.Ssim is not None and result.Ssim >= target
    assert result.Size < best.Size
    assert not any("missed" in note for note in result.Adjustments)
    assert (result.Width, result.FrameCount) == (best.Width, best.FrameCount)


def test_quality_target_that_needs_more_than_the_budget_gives_way(
    bikes: Path, tmp_path: Path, plain_sizes: dict[OutputFormat, int]
) -> None:
    budget = plain_sizes[OutputFormat.WEBP] // 8
    params = template(OutputFormat.WEBP, max_size=budget, quality_target=0.99)
    result = animate(bikes, tmp_path / "out.webp", params)
    assert result.Size <= budget
    assert result.Ssim is not None and result.Ssim < 0.99
    assert "QualityTarget 0.99 missed" in result.Adjustments


def test_plain_template_has_no_measurement(bikes: Path, tmp_path: Path) -> None:
    result = animate(bikes, tmp_path / "out.gif", template(OutputFormat.GIF))
    assert (result.Ssim, result.Adjustments) == (None, ())


def test_measured_ssim_tells_the_right_frames_from_shifted_ones(
    bikes: Path, tmp_path: Path, plain_sizes: dict[OutputFormat, int]
) -> None:
    from test_real_footage import source_frames_at

    params = template(OutputFormat.WEBP, max_size=plain_sizes[OutputFormat.WEBP] * 2)
    result = animate(bikes, tmp_path / "out.webp", params)
    times = [k / 10 for k in range(result.FrameCount)]
    picked = sample_indices(len(times), result.Width * result.Height * 3)
    right = source_frames_at(bikes, [1.0 + times[i] for i in picked], result.Width, result.Height)
    wrong = source_frames_at(bikes, [1.3 + times[i] for i in picked], result.Width, result.Height)
    path = Path(result.path)
    right_score = output_ssim(
        path, "webp", [(times[i], f) for i, f in zip(picked, right, strict=True)]
    )
    wrong_score = output_ssim(
        path, "webp", [(times[i], f) for i, f in zip(picked, wrong, strict=True)]
    )
    assert right_score is not None and wrong_score is not None
    assert abs(right_score - (result.Ssim or 0)) < 0.01  # the engine measured the same thing
    assert wrong_score < right_score - 0.05


def test_gif_frame_sizes_account_for_every_byte(bikes: Path, tmp_path: Path) -> None:
    result = animate(bikes, tmp_path / "out.gif", template(OutputFormat.GIF))
    data = Path(result.path).read_bytes()
    sizes = gif_frame_sizes(data)
    assert len(sizes) == len(decode_animation(result.path).frames)
    header = 13 + 3 * 256 + 19 + 1  # header, screen, global table, loop extension, trailer
    assert len(data) - sum(sizes) <= header
