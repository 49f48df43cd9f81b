"""Template ``Quality`` (1-100, default 75) mapped to encoder choices.

GIF:
- ``reuse_threshold``: a pixel whose source colour is within this RGB distance (Euclidean,
  in 0-255 levels) of what is already on screen keeps the previous frame's pixel, which the
  GIF stores as transparent. This removes codec noise and shimmer, the main cost of GIF, at a
  bounded colour error. 0 at Quality 100 (only identical pixels are reused), 6 at 75. The
  threshold is scaled per pixel by local detail (0.15x on flat areas, 1.5x on texture),
  because errors show on flat gradients and hide in texture.
- ``palette_quality``: libimagequant's target quality; below 100 it may use fewer colours.
- ``palette_speed``: libimagequant speed (1 slowest/best to 10 fastest).
WebP:
- ``webp_quality``: libwebp's quality factor, the same scale ffmpeg's ``-q:v`` uses.
- ``webp_method``: libwebp's effort (``compression_level``), 4 like ffmpeg's default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderChoices:
    reuse_threshold: int
    palette_quality: int
    palette_speed: int
    webp_quality: float
    webp_method: int


def choices_for(quality: float) -> EncoderChoices:
    q = min(max(quality, 1.0), 100.0)
    return EncoderChoices(
        reuse_threshold=round((100.0 - q) * 0.24),
        palette_quality=min(100, round(40 + q * 0.8)),
        palette_speed=4,
        webp_quality=q,
        webp_method=4,
    )
