"""MP4: H.264 (libx264, yuv420p) without audio, moov before mdat (plays while it
downloads), for ``<video autoplay muted loop playsinline>``.

H.264's 4:2:0 needs even sizes; the engine rounds each side down to one
(:func:`anigraph.domain.geometry.even_size`) before frames reach this encoder.
"""

from __future__ import annotations

from anigraph.media.quality import EncoderChoices
from anigraph.media.timed_video import VideoFormat


def mp4_format(choices: EncoderChoices, threads: int) -> VideoFormat:
    return VideoFormat(
        container="mp4",
        # faststart: the muxer moves the index (moov) before the media data at close.
        container_options={"movflags": "+faststart"},
        codec="libx264",
        codec_options={
            "crf": f"{choices.x264_crf:g}",
            "preset": choices.x264_preset,
            "profile": "high",
        },
        threads=threads,
    )
