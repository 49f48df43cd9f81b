"""Animated WebP encoder: libwebp's animation encoder through PyAV, timestamps in ms."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av

from anigraph.domain.timeline import Timeline
from anigraph.media.quality import EncoderChoices


class WebpEncoder:
    def __init__(
        self, path: Path, width: int, height: int, timeline: Timeline, choices: EncoderChoices
    ) -> None:
        self._path = path
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
        set_total_duration(self._path, self._tick)

    def abort(self) -> None:
        self._container.close()


def set_total_duration(path: Path, total_ms: int) -> None:
    """Give the last ANMF frame whatever is left of ``total_ms``.

    libwebp's animation encoder is flushed by FFmpeg without an end timestamp, so it repeats
    the previous frame's duration for the last frame; a short last frame (a segment that does not
    end on a frame boundary) would then stretch the animation past the segment.
    """
    with path.open("r+b") as handle:
        data = handle.read()
        if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
            return
        frames: list[tuple[int, int]] = []  # (offset of the duration field, duration)
        offset = 12
        while offset + 8 <= len(data):
            kind = data[offset : offset + 4]
            size = struct.unpack_from("<I", data, offset + 4)[0]
            if kind == b"ANMF" and size >= 16:
                field = offset + 8 + 12
                frames.append((field, int.from_bytes(data[field : field + 3], "little")))
            offset += 8 + size + (size & 1)
        if not frames:
            return
        last_field, last = frames[-1]
        remaining = total_ms - sum(duration for _, duration in frames[:-1])
        if 0 < remaining < (1 << 24) and remaining != last:
            handle.seek(last_field)
            handle.write(remaining.to_bytes(3, "little"))
