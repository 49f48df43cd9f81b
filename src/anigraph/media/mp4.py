"""MP4 encoder: H.264 (libx264, yuv420p) without audio, moov before mdat (plays while it
downloads), for ``<video autoplay muted loop playsinline>``.

H.264's 4:2:0 needs even sizes; the engine rounds each side down to one
(:func:`anigraph.domain.geometry.even_size`) before frames reach this encoder.
"""

from __future__ import annotations

from pathlib import Path

from anigraph.domain.timeline import Timeline
from anigraph.media.quality import EncoderChoices
from anigraph.media.timed_video import TimedVideoWriter


class Mp4Encoder(TimedVideoWriter):
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
            "mp4",
            # faststart: the muxer moves the index (moov) before the media data at close.
            {"movflags": "+faststart"},
            "libx264",
            width,
            height,
            fps,
            timeline,
            {
                "crf": f"{choices.x264_crf:g}",
                "preset": choices.x264_preset,
                "profile": "high",
            },
            threads,
        )
