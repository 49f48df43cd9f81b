"""Output size from template Width/Height/ResolutionAdaptive (spec 2.1)."""

from __future__ import annotations

from enum import StrEnum


class ResolutionAdaptive(StrEnum):
    OPEN = "open"
    CLOSE = "close"


def _derived(value: float) -> int:
    return max(1, round(value))


def output_size(
    src_w: int, src_h: int, width: int, height: int, adaptive: ResolutionAdaptive
) -> tuple[int, int]:
    """Size of the output for a displayed source size ``src_w`` x ``src_h``.

    Both limits 0 keeps the source size; one 0 scales that side proportionally; both set
    gives exactly that box. With ``open`` the limits apply to the long and short edge, so a
    portrait source gets a portrait output of the same box turned around.
    """
    if src_w <= 0 or src_h <= 0:
        raise ValueError("source size must be positive")
    if adaptive is ResolutionAdaptive.OPEN and src_h > src_w:
        width, height = height, width
    if width == 0 and height == 0:
        return src_w, src_h
    if width and height:
        return width, height
    if width:
        return width, _derived(src_h * width / src_w)
    return _derived(src_w * height / src_h), height


def even_size(width: int, height: int) -> tuple[int, int]:
    """Each side rounded down to an even number, at least 2: what H.264's 4:2:0 (MP4) needs."""
    return max(2, width - width % 2), max(2, height - height % 2)


def at_least(width: int, height: int, side: int) -> tuple[int, int]:
    """Each side raised to ``side`` if smaller: SVT-AV1 (AVIF) refuses frames under 4x4."""
    return max(side, width), max(side, height)
