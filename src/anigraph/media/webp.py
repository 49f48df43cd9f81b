"""Animated WebP encoder: libwebp's animation encoder through PyAV, timestamps in ms."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from anigraph.domain.timeline import Timeline
from anigraph.media.quality import EncoderChoices


class WebpEncoder:
    def __init__(
        self, path: Path, width: int, height: int, timeline: Timeline, choices: EncoderChoices
    ) -> None:
        self._timeline = timeline
        self._container = av.open(str(path), mode="w", format="webp", options={"loop": "0"})
        self._stream = self._container.add_stream("libwebp_anim", rate=1000)
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = Fraction(1, 1000)
        self._stream.options = {
            "quality": f"{choices.webp_quality:g}",
            "compression_level": str(choices.webp_method),
            "lossless": "0",
        }
        self._index = 0
        self._tick = 0

    def write(self, frame: av.VideoFrame) -> None:
        duration = self._timeline.durations[self._index]
        frame.pts = self._tick
        frame.time_base = Fraction(1, 1000)
        frame.duration = duration
        self._tick += duration
        self._index += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        self._container.close()
