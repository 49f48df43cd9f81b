"""Values the engine takes and returns. Field names follow Tencent's where they are Tencent's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.domain.templates import DEFAULT_DURATION


class OutputFormat(StrEnum):
    GIF = "gif"
    WEBP = "webp"
    AVIF = "avif"  # extension: animated AVIF (AV1)
    MP4 = "mp4"  # extension: H.264 in MP4, no audio, for <video autoplay muted loop>


class SegmentMode(StrEnum):
    """How the segment is chosen (extension field ``SegmentMode``)."""

    FIXED = "Fixed"  # Tencent's behaviour: exactly StartTimeOffset..EndTimeOffset
    HIGHLIGHT = "Highlight"  # the best window of ``duration`` seconds inside those bounds


class LoopMode(StrEnum):
    """How the animation's end leads into its start (extension field ``LoopMode``)."""

    NONE = "None"
    SEAMLESS = "Seamless"
    CROSSFADE = "Crossfade"
    BOOMERANG = "Boomerang"


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
    # Extensions beyond Tencent's template; these defaults are Tencent's behaviour exactly.
    max_size: int = 0  # bytes; 0 = no budget
    quality_target: float = 0.0  # SSIM to reach; 0 = off
    segment_mode: SegmentMode = SegmentMode.FIXED
    duration: float = DEFAULT_DURATION  # seconds, the Highlight window's length
    loop_mode: LoopMode = LoopMode.NONE

    def uses_extension(self) -> bool:
        """True when the job asks for anything Tencent's template has not (fields or formats)."""
        return (
            self.max_size > 0
            or self.quality_target > 0
            or self.segment_mode is not SegmentMode.FIXED
            or self.loop_mode is not LoopMode.NONE
            or self.format in (OutputFormat.AVIF, OutputFormat.MP4)
        )


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
    # The measured result, on the wire only for jobs that use an extension (extension_fields).
    Fps: float = 0.0  # effective: FrameCount / Duration
    Ssim: float | None = None  # mean SSIM of output frames against the source frames they show
    Adjustments: tuple[str, ...] = ()  # what was given up to meet MaxSize, e.g. "Fps 12→8"
    LoopSeam: float | None = None  # SSIM of the last frame against the first

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

    def extension_fields(self) -> dict[str, Any]:
        """Output fields beyond Tencent's ``MediaAnimatedGraphicsItem`` (extension templates)."""
        fields: dict[str, Any] = {
            "FrameCount": self.FrameCount,
            "Fps": round(self.Fps, 3),
            "Adjustments": list(self.Adjustments),
        }
        if self.Ssim is not None:
            fields["Ssim"] = round(self.Ssim, 4)
        if self.LoopSeam is not None:
            fields["LoopSeam"] = round(self.LoopSeam, 4)
        return fields


# Called with a fraction in [0, 1] as work advances.
ProgressCallback = Callable[[float], None]
