"""Animated AVIF encoder: SVT-AV1 through PyAV into FFmpeg's ``avif`` muxer, looping forever.

AV1 has no even-size rule (4:2:0 chroma planes round up), so any output size is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from anigraph.domain.timeline import Timeline
from anigraph.media.quality import EncoderChoices
from anigraph.media.timed_video import TimedVideoWriter

# SVT-AV1 prints its banner and settings to stderr at info level; errors still show.
os.environ.setdefault("SVT_LOG", "1")


class AvifEncoder(TimedVideoWriter):
    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: int,
        timeline: Timeline,
        choices: EncoderChoices,
        threads: int,
    ) -> None:
        super().__init__(
            path,
            "avif",
            {"loop": "0"},  # 0 = loop forever (an edit list repeated without end)
            "libsvtav1",
            width,
            height,
            fps,
            timeline,
            {
                "crf": str(choices.avif_crf),
                "preset": str(choices.avif_preset),
                # lp: SVT-AV1's level of parallelism, so the engine's thread limit holds.
                "svtav1-params": f"lp={threads}",
            },
            threads,
        )
