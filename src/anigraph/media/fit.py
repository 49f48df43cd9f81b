"""MaxSize and QualityTarget: search the settings, encode as few times as possible.

MaxSize: the output never exceeds the budget. Probes of sampled seconds (media.fit_probe) give
each setting's estimated bytes and viewer SSIM. Besides the template's own setting, six probes
walk each axis alone (encoder level: Quality and, for GIF, colours; fps; size); bytes are modelled
as the product of each axis's ratio and SSIM losses as their sum (interpolated in log fps and log
scale, extrapolated past the last probe). The best predicted setting under ~92% of the budget is
probed once more to correct the model, then encoded in full. The written size is checked by the
byte: over the budget, the model is scaled by the miss and the job encoded again with less;
under 80% of it, one better setting may be tried. If the smallest setting still does not fit, the
job fails with ``InvalidInput.ResultFileSizeTooLarge`` and the size it reached.

QualityTarget: fps and size stay the template's; the encoder level is binary-searched on probes
for the smallest level whose SSIM reaches the target, then measured on the written file (one step
up if it falls short). With both set, a target that would exceed the budget gives way to it and
the result says so in ``Adjustments``.
"""

from __future__ import annotations

import itertools
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.media.fit_probe import MotionLoss, Probe, Sample, Setting, run_probe, take_sample
from anigraph.media.quality import EncoderChoices, choices_for
from anigraph.media.types import AnimateParams, Limits, OutputFormat, ProgressCallback, Result

Render = Callable[[Path, AnimateParams, EncoderChoices, ProgressCallback], Result]

GIF_COLOURS = 255
# GIF encoder levels below the template's Quality: (Quality, colours), best first.
_GIF_LEVELS = (
    (100, 255),
    (90, 255),
    (80, 255),
    (70, 255),
    (60, 255),
    (50, 192),
    (40, 128),
    (30, 96),
    (20, 64),
    (10, 40),
)
_WEBP_LEVELS = (100, 95, 90, 85, 80, 78, 75, 72, 70, 65, 60, 50, 40, 30, 20, 10, 5)
_FPS_STEPS = (1.0, 0.85, 0.7, 0.6, 0.5, 0.4, 0.33, 0.25, 0.2)
_SCALE_STEPS = (
    1.0,
    0.93,
    0.86,
    0.8,
    0.75,
    0.7,
    0.65,
    0.6,
    0.55,
    0.5,
    0.45,
    0.42,
    0.38,
    0.35,
    0.32,
    0.3,
    0.27,
    0.25,
    0.22,
    0.2,
    0.18,
    0.16,
    0.14,
    0.12,
    0.1,
)
MIN_FPS = 2
MIN_SIDE = 16
AIM = 0.92  # share of the budget the first full encode aims at
RETRY_AIM = 0.96
RESCUE_AIM = 0.75
# The template's own setting is encoded first if estimated under this share of the budget.
# Probes misjudge the full length's bytes by about -20%..+10% (bench/fit.py's clips): a plain
# output estimated a little over often fits, and when it does not, its size calibrates the
# next encode as well as a smaller first try would.
PLAIN_FIRST = 1.10
MAX_ENCODES = 3  # full encodes before the rescue ones (the last two, small by construction)
USE_FLOOR = 0.86  # under this share of the budget, one better setting is tried
SSIM_MARGIN = 0.003


@dataclass(frozen=True)
class _Axes:
    levels: tuple[Level, ...]
    fps: tuple[int, ...]
    scales: tuple[float, ...]


Level = tuple[float, int]  # (Quality, GIF colours)


def _levels(fmt: OutputFormat, top: Level) -> tuple[Level, ...]:
    """Encoder levels best first, the first one ``top`` itself."""
    if fmt is OutputFormat.GIF:
        return (top, *((float(q), c) for q, c in _GIF_LEVELS if q < top[0] and c <= top[1]))
    return (top, *((float(q), GIF_COLOURS) for q in _WEBP_LEVELS if q < top[0]))


def _axes(params: AnimateParams, sample: Sample, top: Level) -> _Axes:
    floor = min(params.fps, MIN_FPS)
    fps = sorted({max(floor, round(params.fps * r)) for r in _FPS_STEPS}, reverse=True)
    short = min(sample.width, sample.height)
    scales = tuple(s for s in _SCALE_STEPS if s == 1.0 or short * s >= MIN_SIDE)
    return _Axes(_levels(params.format, top), tuple(fps), scales)


def _setting(sample: Sample, axes: _Axes, level: int, fps: int, scale: int) -> Setting:
    s = axes.scales[scale]
    quality, colours = axes.levels[level]
    return Setting(
        fps=axes.fps[fps],
        width=max(1, round(sample.width * s)),
        height=max(1, round(sample.height * s)),
        quality=quality,
        colours=colours,
    )


def choices(fmt: OutputFormat, setting: Setting) -> EncoderChoices:
    base = choices_for(setting.quality)
    return replace(base, colours=setting.colours) if fmt is OutputFormat.GIF else base


class _Curve:
    """Piecewise-linear in x through the probed points; straight on past the last one.

    ``flat_start``: from the template's own point to the next one the curve is a parabola that
    leaves it flat, since SSIM falls slowly for the first small steps (a linear guess there
    would price Quality 75→70 as a sixth of 75→5 when it costs almost nothing).
    """

    def __init__(self, points: Sequence[tuple[float, float]], flat_start: bool = False) -> None:
        self._points = sorted(points)
        self._flat_start = flat_start

    def __call__(self, x: float) -> float:
        p = self._points
        if len(p) == 1:
            return p[0][1]
        for index, ((x0, y0), (x1, y1)) in enumerate(itertools.pairwise(p)):
            if x <= x1 or (x1, y1) == p[-1]:
                if x1 == x0:
                    return y1
                t = (x - x0) / (x1 - x0)
                if self._flat_start and index == 0 and 0 <= t <= 1:
                    t *= t
                return y0 + (y1 - y0) * t
        return p[-1][1]


class _Search:
    """Probes, the separable model, and the record of what has been tried."""

    def __init__(self, params: AnimateParams, sample: Sample, axes: _Axes, scratch: Path) -> None:
        self.params = params
        self.sample = sample
        self.axes = axes
        self.scratch = scratch
        self.probes: dict[tuple[int, int, int], Probe] = {}
        self.motion = MotionLoss(sample)

    def probe(self, key: tuple[int, int, int]) -> Probe:
        if key not in self.probes:
            setting = _setting(self.sample, self.axes, *key)
            self.probes[key] = run_probe(
                self.sample,
                self.params.format,
                setting,
                choices(self.params.format, setting),
                self.scratch,
                scored=key[1] == 0,
            )
        return self.probes[key]

    def score(self, key: tuple[int, int, int], at_full_fps: float) -> float:
        """Predicted viewer SSIM from the setting's SSIM at the template's fps and lost fps."""
        # Fewer frames never show the source better: sampling noise must not say otherwise.
        motion = [self.motion(fps) for fps in self.axes.fps[: key[1] + 1]]
        # Losses add up: slightly pessimistic for settings that give up on several axes at once.
        return at_full_fps - (max(motion) - motion[0])

    def model(self) -> Callable[[tuple[int, int, int]], tuple[float, float]]:
        base = self.probes[(0, 0, 0)]
        curves = []
        for axis, coordinate in enumerate(self._coordinates()):
            points = [
                (coordinate(key[axis]), math.log(p.estimate), p.viewer_ssim)
                for key, p in self.probes.items()
                if all(key[other] == 0 for other in range(3) if other != axis)
            ]
            scored = [(x, s) for x, _, s in points if not math.isnan(s)]
            curves.append(
                (
                    coordinate,
                    _Curve([(x, y) for x, y, _ in points]),
                    _Curve(scored or [(0.0, base.viewer_ssim)], flat_start=axis == 0),
                )
            )

        def predict(key: tuple[int, int, int]) -> tuple[float, float]:
            log_bytes = math.log(base.estimate)
            lost = 0.0
            for axis, (coordinate, size_curve, ssim_curve) in enumerate(curves):
                x = coordinate(key[axis])
                log_bytes += size_curve(x) - math.log(base.estimate)
                if axis != 1:
                    lost += max(0.0, base.viewer_ssim - ssim_curve(x))
            return math.exp(log_bytes), self.score(key, base.viewer_ssim - lost)

        return predict

    def _coordinates(self) -> tuple[Callable[[int], float], ...]:
        axes = self.axes
        return (
            float,
            lambda i: -math.log(axes.fps[i]),
            lambda i: -math.log(axes.scales[i]),
        )

    def grid(self) -> list[tuple[int, int, int]]:
        a = self.axes
        return [
            (level, fps, scale)
            for level in range(len(a.levels))
            for fps in range(len(a.fps))
            for scale in range(len(a.scales))
        ]

    def best_under(self, goal: float, correction: float) -> tuple[int, int, int] | None:
        predict = self.model()
        best: tuple[float, tuple[int, int, int]] | None = None
        for key in self.grid():
            measured = self.probes.get(key)
            size, score = predict(key)
            if measured is not None:
                size = measured.estimate
                if not math.isnan(measured.viewer_ssim):
                    score = self.score(key, measured.viewer_ssim)
            if size * correction <= goal and (best is None or score > best[0]):
                best = (score, key)
        return None if best is None else best[1]

    def smallest(self) -> tuple[int, int, int]:
        return (len(self.axes.levels) - 1, len(self.axes.fps) - 1, len(self.axes.scales) - 1)


def _axis_probes(axes: _Axes, reduction: float) -> list[tuple[int, int, int]]:
    """Probes along each axis: the middle and lowest level, half the fps, and the size a prior
    expects to reach ``reduction`` alone (bytes ~ scale^1.8), at least a quarter of the
    template's."""
    keys = []
    if len(axes.levels) > 3:  # SSIM falls slowly, then fast: the middle is worth a probe
        keys.append((len(axes.levels) // 2, 0, 0))
    if len(axes.levels) > 1:
        keys.append((len(axes.levels) - 1, 0, 0))
    half = min(range(len(axes.fps)), key=lambda i: abs(axes.fps[i] - axes.fps[0] / 2))
    if half > 0:
        keys.append((0, half, 0))
    wanted = min(0.7, max(0.25, reduction ** (1 / 1.8)))
    scale = min(range(len(axes.scales)), key=lambda i: abs(axes.scales[i] - wanted))
    if scale > 0:
        keys.append((0, 0, scale))
    return keys


def _adjustments(params: AnimateParams, sample: Sample, setting: Setting) -> list[str]:
    changes = []
    if setting.quality != params.quality:
        changes.append(f"Quality {params.quality:g}→{setting.quality:g}")
    if params.format is OutputFormat.GIF and setting.colours != GIF_COLOURS:
        changes.append(f"Colors {GIF_COLOURS}→{setting.colours}")
    if setting.fps != params.fps:
        changes.append(f"Fps {params.fps}→{setting.fps}")
    if (setting.width, setting.height) != (sample.width, sample.height):
        changes.append(f"Size {sample.width}x{sample.height}→{setting.width}x{setting.height}")
    return changes


def _params_for(params: AnimateParams, setting: Setting) -> AnimateParams:
    return replace(
        params,
        fps=setting.fps,
        width=setting.width,
        height=setting.height,
        resolution_adaptive=ResolutionAdaptive.CLOSE,
        quality=setting.quality,
    )


class _Encodes:
    """Full encodes into scratch files next to the output; the kept one is moved in at the end."""

    def __init__(
        self, output: Path, params: AnimateParams, render: Render, progress: ProgressCallback | None
    ) -> None:
        self.output = output
        self.params = params
        self.render = render
        self.progress = progress
        self.files: list[Path] = []
        self.count = 0

    def encode(self, setting: Setting) -> Result:
        path = self.output.with_name(f".{self.output.name}.{uuid.uuid4().hex}.fit")
        self.files.append(path)
        self.count += 1
        report = self.progress
        share = 0.3 + 0.2 * min(self.count - 1, 3)

        def step(fraction: float) -> None:
            if report is not None:
                report(min(0.99, share + 0.2 * fraction))

        return self.render(
            path, _params_for(self.params, setting), choices(self.params.format, setting), step
        )

    def keep(self, made: Result) -> Result:
        os.replace(made.path, self.output)
        return replace(made, path=str(self.output))

    def discard(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)


def fit(
    source: str | os.PathLike[str],
    output: Path,
    params: AnimateParams,
    limits: Limits,
    deadline: float | None,
    progress: ProgressCallback | None,
    render: Render,
) -> Result:
    """The output for a template with MaxSize and/or QualityTarget (see the module's text)."""
    sample = take_sample(source, params, limits, deadline)
    if progress is not None:
        progress(0.1)
    encodes = _Encodes(output, params, render, progress)
    try:
        made, setting = _run(params, sample, output.parent, encodes)
        kept = encodes.keep(made)
    finally:
        encodes.discard()
    notes = _adjustments(params, sample, setting)
    if params.quality_target and (made.Ssim is None or made.Ssim < params.quality_target):
        notes.append(f"QualityTarget {params.quality_target:g} missed")
    return replace(kept, Adjustments=tuple(notes))


def _run(
    params: AnimateParams, sample: Sample, scratch: Path, encodes: _Encodes
) -> tuple[Result, Setting]:
    top: Level = (params.quality, GIF_COLOURS)
    if params.quality_target:
        top = _quality_for_target(params, sample, scratch)
    axes = _axes(params, sample, top)
    search = _Search(params, sample, axes, scratch)
    budget = params.max_size
    base = search.probe((0, 0, 0)) if budget else None
    # Near the budget the estimate cannot tell; the plain encode can (and is kept if it fits).
    if base is None or base.estimate <= PLAIN_FIRST * budget:
        plain = _setting(sample, axes, 0, 0, 0)
        made = encodes.encode(plain)
        if params.quality_target and made.Ssim is not None and made.Ssim < params.quality_target:
            better = _next_level_up(params, top)
            if better is not None and (not budget or made.Size <= AIM * budget):
                plain = replace(plain, quality=better[0], colours=better[1])
                retry = encodes.encode(plain)
                if not budget or retry.Size <= budget:
                    made = retry
        if base is None or made.Size <= budget:
            return made, plain
        correction = made.Size / base.estimate
    else:
        correction = 1.0
    return _fit_budget(search, encodes, budget, correction)


def _choose(search: _Search, goal: float, correction: float) -> tuple[int, int, int] | None:
    """The best setting predicted under ``goal``, checked by its own probe (up to twice)."""
    choice = search.best_under(goal, correction)
    for _ in range(2):
        if choice is None or choice in search.probes:
            break
        search.probe(choice)
        choice = search.best_under(goal, correction)
    return choice


def _larger(
    search: _Search, key: tuple[int, int, int], size: int, goal: float
) -> tuple[int, int, int] | None:
    """The best setting that gives up no more than ``key`` on any axis and is predicted under
    ``goal``, its bytes anchored on what ``key`` really made."""
    predict = search.model()
    made_as = predict(key)[0]
    best: tuple[float, tuple[int, int, int]] | None = None
    for candidate in search.grid():
        if candidate == key or any(c > k for c, k in zip(candidate, key, strict=True)):
            continue
        predicted, score = predict(candidate)
        if predicted / made_as * size <= goal and (best is None or score > best[0]):
            best = (score, candidate)
    return None if best is None else best[1]


def _fit_budget(
    search: _Search, encodes: _Encodes, budget: int, correction: float
) -> tuple[Result, Setting]:
    reduction = AIM * budget / (search.probe((0, 0, 0)).estimate * correction)
    for key in _axis_probes(search.axes, reduction):
        search.probe(key)
    choice = search.best_under(AIM * budget, correction)
    if choice is not None and choice[2] > max(key[2] for key in search.probes):
        # Past the probed sizes the curve is extrapolated: measure that size once.
        search.probe((0, 0, choice[2]))
    choice = _choose(search, AIM * budget, correction)
    best: tuple[Result, Setting] | None = None
    tried: set[tuple[int, int, int]] = set()
    smallest: tuple[int, Setting] | None = None
    while True:
        if encodes.count >= MAX_ENCODES - 1 and best is None:
            # Last tries: a wide margin, then the smallest setting there is.
            choice = _choose(search, RESCUE_AIM * budget, correction)
            if choice is None or choice in tried or encodes.count >= MAX_ENCODES:
                choice = search.smallest()
        key = choice if choice is not None else search.smallest()
        if key in tried or (best is not None and encodes.count >= MAX_ENCODES - 1):
            break
        tried.add(key)
        setting = _setting(search.sample, search.axes, *key)
        made = encodes.encode(setting)
        correction = made.Size / search.probe(key).estimate
        if made.Size <= budget:
            if best is None or made.Size > best[0].Size:
                best = (made, setting)
            if made.Size >= USE_FLOOR * budget or best[0] is not made:
                break
            choice = _larger(search, key, made.Size, RETRY_AIM * budget)
            continue
        if smallest is None or made.Size < smallest[0]:
            smallest = (made.Size, setting)
        if best is not None or key == search.smallest():
            break
        choice = _choose(search, AIM * budget, correction)
    if best is None:
        size, setting = smallest or (0, _setting(search.sample, search.axes, *search.smallest()))
        raise TaskError(
            ErrCodeExt.RESULT_FILE_TOO_LARGE,
            f"MaxSize of {budget} bytes cannot be met: the smallest output reached is {size} bytes "
            f"({setting.width}x{setting.height}, {setting.fps} fps, Quality {setting.quality:g})",
        )
    return best


def _next_level_up(params: AnimateParams, level: Level) -> Level | None:
    higher = [known for known in _all_levels(params.format) if known[0] > level[0]]
    return higher[-1] if higher else None


def _all_levels(fmt: OutputFormat) -> tuple[Level, ...]:
    return _levels(fmt, (100.0, GIF_COLOURS))


def _quality_for_target(params: AnimateParams, sample: Sample, scratch: Path) -> Level:
    """The lowest level whose probe reaches the target (binary search over the levels)."""
    levels = _all_levels(params.format)
    full = Setting(params.fps, sample.width, sample.height, 100.0, GIF_COLOURS)
    low, high = 0, len(levels) - 1  # levels[low] is the best one known to reach it
    while low < high:
        middle = (low + high + 1) // 2
        quality, colours = levels[middle]
        setting = replace(full, quality=quality, colours=colours)
        probe = run_probe(sample, params.format, setting, choices(params.format, setting), scratch)
        if probe.viewer_ssim >= params.quality_target + SSIM_MARGIN:
            low = middle
        else:
            high = middle - 1
    return levels[low]
