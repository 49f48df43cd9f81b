"""A video encoder and muxer fed frame by frame on the engine's timeline (AVIF and MP4).

Frame k gets ``pts`` = the sum of the durations before it, in the timeline's ticks, and
every packet leaves the encoder with its frame's duration: the muxer writes each sample's
duration from the packet, so the last frame lasts its own interval (a segment that does not
end on a frame boundary keeps its exact length) instead of repeating the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
from av.video.stream import VideoStream

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.timeline import Timeline

# FFmpeg's AVColorSpace and AVColorRange values.
_UNSPECIFIED = 2
_RESERVED = 3
_BT601 = 6  # SMPTE 170M
_LIMITED_RANGE = 1


@dataclass(frozen=True)
class VideoFormat:
    """A container and the codec in it, with their options (media/avif.py, media/mp4.py)."""

    container: str
    container_options: dict[str, str]
    codec: str
    codec_options: dict[str, str]
    threads: int


class TimedVideoWriter:
    """Writes ``spec``'s codec into its container at ``path``, ``width`` x ``height`` at a
    nominal ``fps``. Call :meth:`write` per frame in display order, then :meth:`close`, or
    :meth:`abort` on failure (the caller deletes the file).
    """

    def __init__(
        self, path: Path, spec: VideoFormat, width: int, height: int, fps: int, timeline: Timeline
    ) -> None:
        if spec.codec not in av.codecs_available:
            # A PyAV built without it (the wheels have SVT-AV1 and x264): say so, do not retry.
            raise TaskError(
                ErrCodeExt.CONFIGURATION_UNSUPPORTED,
                f"this installation's FFmpeg has no {spec.codec} encoder for {spec.container}",
            )
        self._timeline = timeline
        self._time_base = Fraction(1, timeline.unit)
        self._container: av.container.OutputContainer = av.open(
            str(path), mode="w", format=spec.container, options=spec.container_options
        )
        # The nominal rate is what rate control and level selection use; the real timing is
        # each frame's pts in the timeline's unit.
        stream = self._container.add_stream(spec.codec, rate=fps)
        assert isinstance(stream, VideoStream)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = self._time_base
        stream.codec_context.time_base = self._time_base
        stream.codec_context.thread_count = spec.threads
        stream.options = dict[str, object](spec.codec_options)
        self._stream = stream
        self._colour_set = False
        self._durations: dict[int, int] = {}
        self._index = 0
        self._tick = 0

    def write(self, frame: av.VideoFrame) -> None:
        if not self._colour_set:
            self._tag_colour(frame)
        duration = self._timeline.durations[self._index]
        frame.pts = self._tick
        frame.time_base = self._time_base
        frame.duration = duration
        self._durations[self._tick] = duration
        self._tick += duration
        self._index += 1
        self._mux(self._stream.encode(frame))

    def close(self) -> None:
        self._mux(self._stream.encode(None))
        self._container.close()

    def abort(self) -> None:
        # No flush: encoding the frames still in flight would only delay the failure (SVT-AV1
        # logs "deinit called without sending EOS", which is harmless).
        self._container.close()

    def _tag_colour(self, frame: av.VideoFrame) -> None:
        # An untagged stream leaves the matrix to each player's guess, and players guess
        # differently; an untagged frame here went through swscale, whose default is BT.601
        # limited range, so the stream says that.
        context = self._stream.codec_context
        specified = frame.colorspace not in (_UNSPECIFIED, _RESERVED)
        context.colorspace = frame.colorspace if specified else _BT601
        context.color_range = frame.color_range or _LIMITED_RANGE
        self._colour_set = True

    def _mux(self, packets: list[av.Packet[VideoStream]]) -> None:
        for packet in packets:
            if packet.pts is not None:
                packet.duration = self._durations.pop(packet.pts, packet.duration)
            self._container.mux(packet)
