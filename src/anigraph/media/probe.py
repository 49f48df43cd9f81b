"""Source metadata in Tencent's ``MediaMetaData`` shape (spec 3.8)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import av.container
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media.safe_open import open_media
from anigraph.media.types import AudioStreamItem, Limits, MetaData, VideoStreamItem

_HDR_TRANSFER = {"smpte2084": "hdr10", "arib-std-b67": "hlg"}


def _seconds(value: int | None, time_base: Fraction | None) -> float:
    if value is None or time_base is None:
        return 0.0
    return float(value * time_base)


def stream_duration(stream: av.stream.Stream, container: av.container.InputContainer) -> float:
    """Duration of one stream in seconds, falling back to the container's."""
    seconds = _seconds(stream.duration, stream.time_base)
    if seconds <= 0 and container.duration:
        seconds = container.duration / av.time_base
    return seconds


def rotation_of(frame: av.VideoFrame) -> int:
    """Clockwise display rotation in degrees (0, 90, 180 or 270), like the old ``rotate`` tag."""
    counterclockwise = frame.rotation
    return round(-counterclockwise / 90.0) * 90 % 360


def first_frame(container: av.container.InputContainer, stream: VideoStream) -> av.VideoFrame:
    """Decode the first picture; a file that has none is malformed."""
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, f"cannot decode video: {exc}") from exc
    raise TaskError(ErrCodeExt.CONTENT_MALFORMED, "video stream holds no decodable picture")


def check_video_stream(stream: VideoStream, limits: Limits) -> None:
    """Refuse streams with no size or a size over the limit before decoding anything."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise TaskError(ErrCodeExt.NO_VIDEO_RESOLUTION, "video stream has no dimensions")
    if width * height > limits.max_source_pixels:
        raise TaskError(
            ErrCodeExt.CONTENT_UNSUPPORTED,
            f"video frame {width}x{height} exceeds the limit of {limits.max_source_pixels} pixels",
        )


def pick_video_stream(container: av.container.InputContainer) -> VideoStream:
    """The main video stream: skips cover art, which FFmpeg exposes as a one-picture stream."""
    candidates = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not candidates:
        raise TaskError(ErrCodeExt.NO_VIDEO_MEDIA, "source has no video stream")
    return max(candidates, key=lambda s: s.codec_context.width * s.codec_context.height)


def _dynamic_range(stream: VideoStream) -> dict[str, str]:
    transfer = av.video.reformatter.ColorTrc(stream.codec_context.color_trc).name.lower()
    hdr = next(
        (name for key, name in _HDR_TRANSFER.items() if key.replace("-", "_") in transfer), ""
    )
    return {"Type": "HDR" if hdr else "SDR", "HDRType": hdr}


def _codec_tag(stream: VideoStream) -> str:
    tag = stream.codec_context.codec_tag or ""
    return tag if stream.codec_context.name == "hevc" and tag in ("hvc1", "hev1") else ""


def _has_video(container: av.container.InputContainer) -> bool:
    return any(
        not (s.disposition & av.stream.Disposition.attached_pic) for s in container.streams.video
    )


def probe(path: str | os.PathLike[str], limits: Limits | None = None) -> MetaData:
    """Describe a media file; raises :class:`TaskError` for anything that is not usable media.

    Audio-only files are described (empty ``VideoStreamSet``, zero size); it is the animation
    that refuses them, with ``SourceFileError.NoVideoMedia``.
    """
    limits = limits or Limits()
    size = Path(path).stat().st_size if Path(path).exists() else 0
    with open_media(path) as container:
        video: VideoStream | None = None
        rotate = 0
        if not container.streams.audio or _has_video(container):
            video = pick_video_stream(container)
            check_video_stream(video, limits)
            video.thread_type = "AUTO"
            rotate = rotation_of(first_frame(container, video))
        videos = [
            VideoStreamItem(
                Bitrate=int(s.bit_rate or 0),
                Height=s.codec_context.height,
                Width=s.codec_context.width,
                Codec=s.codec_context.name,
                Fps=round(float(s.average_rate or s.guessed_rate or 0)),
                CodecTag=_codec_tag(s),
                DynamicRangeInfo=_dynamic_range(s),
            )
            for s in container.streams.video
            if not (s.disposition & av.stream.Disposition.attached_pic)
        ]
        audios = [
            AudioStreamItem(
                Bitrate=int(s.bit_rate or 0),
                SamplingRate=int(s.codec_context.sample_rate or 0),
                Codec=s.codec_context.name,
            )
            for s in container.streams.audio
            if isinstance(s, AudioStream)
        ]
        duration = container.duration / av.time_base if container.duration else 0.0
        video_duration = stream_duration(video, container) if video is not None else 0.0
        audio_duration = max(
            (stream_duration(s, container) for s in container.streams.audio), default=0.0
        )
        stream_bitrate = sum(v.Bitrate for v in videos) + sum(a.Bitrate for a in audios)
        return MetaData(
            Size=size,
            Container=container.format.name,
            Bitrate=stream_bitrate or int(container.bit_rate or 0),
            Height=max((v.Height for v in videos), default=0),
            Width=max((v.Width for v in videos), default=0),
            Duration=round(duration or video_duration, 6),
            Rotate=rotate,
            VideoStreamSet=videos,
            AudioStreamSet=audios,
            VideoDuration=round(video_duration, 6),
            AudioDuration=round(audio_duration, 6),
        )
