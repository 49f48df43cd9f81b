"""Animated AVIF: SVT-AV1 through PyAV into FFmpeg's ``avif`` muxer, looping forever.

AV1 has no even-size rule (4:2:0 chroma planes round up), so any output size from 4x4 is kept.
"""

from __future__ import annotations

import os

from anigraph.media.quality import EncoderChoices
from anigraph.media.timed_video import VideoFormat

# SVT-AV1 prints its banner and settings to stderr at info level; errors still show.
os.environ.setdefault("SVT_LOG", "1")


def avif_format(choices: EncoderChoices, threads: int) -> VideoFormat:
    return VideoFormat(
        container="avif",
        container_options={"loop": "0"},  # 0 = forever (an edit list repeated without end)
        codec="libsvtav1",
        codec_options={
            "crf": str(choices.avif_crf),
            "preset": str(choices.avif_preset),
            # lp: SVT-AV1's level of parallelism, so the engine's thread limit holds.
            "svtav1-params": f"lp={threads}",
        },
        threads=threads,
    )
