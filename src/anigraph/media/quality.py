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
- ``colours``: most palette colours; 255 (all but the transparent entry) unless the MaxSize or
  QualityTarget search (media.fit) gives colours up.
WebP:
- ``webp_quality``: libwebp's quality factor, the same scale ffmpeg's ``-q:v`` uses.
- ``webp_method``: libwebp's effort (``compression_level``), 4 like ffmpeg's default.
AVIF (SVT-AV1) and MP4 (x264), so that one Quality looks alike in every format:
- ``avif_crf`` (SVT-AV1, 1-63) and ``x264_crf`` (0-51): the encoders' constant-quality factor,
  interpolated linearly between the anchors below. Each anchor is the factor whose SSIM is at
  least WebP's at that Quality on the engine benchmark's footage (docs/benchmarks.md), so
  AVIF and MP4 never look worse than the WebP of the same Quality there, at far fewer bytes.
- ``avif_preset``: SVT-AV1's speed preset 6 (of 0 slowest to 13 fastest): about 10% fewer
  bytes than 8 at the same SSIM, still several times faster than libwebp.
- ``x264_preset``: x264's ``medium`` (its default); ``slow`` and ``slower`` saved 0-6% of the
  bytes there at up to twice the time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# (Quality, factor) anchors; Quality 75 is the default.
AVIF_CRF_ANCHORS = ((1, 63), (30, 58), (50, 50), (75, 36), (90, 10), (100, 2))
X264_CRF_ANCHORS = ((1, 51), (30, 37), (50, 32), (75, 26), (90, 15), (100, 8))


@dataclass(frozen=True)
class EncoderChoices:
    reuse_threshold: int
    palette_quality: int
    palette_speed: int
    webp_quality: float
    webp_method: int
    avif_crf: int
    avif_preset: int
    x264_crf: float
    x264_preset: str
    colours: int = 255


def choices_for(quality: float) -> EncoderChoices:
    q = min(max(quality, 1.0), 100.0)
    return EncoderChoices(
        reuse_threshold=round((100.0 - q) * 0.24),
        palette_quality=min(100, round(40 + q * 0.8)),
        palette_speed=4,
        webp_quality=q,
        webp_method=4,
        avif_crf=round(_interpolate(AVIF_CRF_ANCHORS, q)),
        avif_preset=6,
        x264_crf=round(_interpolate(X264_CRF_ANCHORS, q), 1),
        x264_preset="medium",
    )


def _interpolate(anchors: tuple[tuple[int, int], ...], quality: float) -> float:
    for (q0, v0), (q1, v1) in itertools.pairwise(anchors):
        if quality <= q1:
            return v0 + (v1 - v0) * (quality - q0) / (q1 - q0)
    return float(anchors[-1][1])
