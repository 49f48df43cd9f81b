"""Values the engine takes and returns. Field names follow Tencent's where they are Tencent's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from anigraph.domain.geometry import ResolutionAdaptive


class OutputFormat(StrEnum):
    GIF = "gif"
    WEBP = "webp"


@dataclass(frozen=True)
class AnimateParams:
    """One animated-graphics job: a template applied to a segment."""

    format: OutputFormat = OutputFormat.GIF
    width: int = 0
    height: int = 0
    resolution_adaptive: ResolutionAdaptive = ResolutionAdaptive.OPEN
    fps: int = 10
    quality: float = 75.0
    start: float = 0.0
    end: float = 0.0


@dataclass(frozen=True)
class Limits:
    """Resource caps; every one is a setting of the service."""

    max_source_pixels: int = 4096 * 4096
    max_output_pixels: int = 4096 * 4096
    max_frames: int = 3000
    max_segment_seconds: float = 600.0
    max_output_bytes: int = 256 * 1024 * 1024
    max_source_frames_decoded: int = 200_000
    max_fps: int = 50
    # A GIF segment whose frames fit in this many bytes is decoded once and kept for the
    # palette; a longer one is decoded twice (histogram pass, then encoding pass).
    palette_buffer_bytes: int = 32 * 1024 * 1024
    threads: int = 0  # 0 = one per core


@dataclass(frozen=True)
class VideoStreamItem:
    Bitrate: int
    Height: int
    Width: int
    Codec: str
    Fps: int
    CodecTag: str
    DynamicRangeInfo: dict[str, str]


@dataclass(frozen=True)
class AudioStreamItem:
    Bitrate: int
    SamplingRate: int
    Codec: str


@dataclass(frozen=True)
class MetaData:
    """Tencent ``MediaMetaData`` (spec 3.8)."""

    Size: int
    Container: str
    Bitrate: int
    Height: int
    Width: int
    Duration: float
    Rotate: int
    VideoStreamSet: list[VideoStreamItem] = field(default_factory=list)
    AudioStreamSet: list[AudioStreamItem] = field(default_factory=list)
    VideoDuration: float = 0.0
    AudioDuration: float = 0.0
    Md5: str = ""

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class Result:
    """What one job produced; becomes a ``MediaAnimatedGraphicsItem``."""

    path: str
    Container: str
    Width: int
    Height: int
    Size: int
    Bitrate: int
    Md5: str
    StartTimeOffset: float
    EndTimeOffset: float
    FrameCount: int
    Duration: float
    decoded_frames: int = 0  # source frames decoded to make it; not part of the wire item

    def to_dict(self) -> dict[str, Any]:
        return {
            "Container": self.Container,
            "Width": self.Width,
            "Height": self.Height,
            "Size": self.Size,
            "Bitrate": self.Bitrate,
            "Md5": self.Md5,
            "StartTimeOffset": self.StartTimeOffset,
            "EndTimeOffset": self.EndTimeOffset,
            "FrameCount": self.FrameCount,
            "Duration": self.Duration,
        }


# Called with a fraction in [0, 1] as work advances.
ProgressCallback = Callable[[float], None]
