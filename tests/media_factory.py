"""Synthetic media for the engine tests, written with PyAV only (never a system ffmpeg).

Every frame of :func:`make_clip` carries its own index as a barcode that survives lossy
compression, Lanczos downscaling, stretching and palette quantisation, so a test can tell
exactly which source frame an output frame shows (:func:`read_index`).

Frame layout, in *display* orientation (after the rotation the container asks for):

- top half: a flat grey level that changes with the index (realistic, not decoded);
- bottom half: ``BARS`` equally wide vertical bars across the full width. Bar 0 is always
  white and the last bar always black (guards: a mirrored, flipped or turned picture fails
  to decode); the bars between hold the index in binary, most significant bit first, white
  meaning 1.

A rotated clip stores the picture turned the other way, so it only reads correctly when
the player (the engine) applies the rotation in the right direction.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

DATA_BITS = 10
BARS = DATA_BITS + 2
MAX_INDEX = (1 << DATA_BITS) - 1
# A bar's centre must be clearly black or clearly white; anything between is a blend of
# frames, a wrong orientation or no pattern at all.
DARK_MAX = 80
LIGHT_MIN = 175
AUDIO_RATE = 48_000


# The main synthetic clip (fixture ``clip``): 6 s of 320x180 at 25 fps, a keyframe every 2 s.
CLIP_SECONDS = 6.0
CLIP_FPS = 25
CLIP_SIZE = (320, 180)


def default_codec() -> str:
    """``libx264`` when this PyAV build has it, else FFmpeg's native ``mpeg4``."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _grey(index: int) -> int:
    return 40 + (index * 37) % 176


def pattern(index: int, width: int, height: int) -> NDArray[np.uint8]:
    """The RGB picture (``height`` x ``width``) that displays frame ``index``."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"index {index} does not fit in {DATA_BITS} bits")
    image = np.empty((height, width, 3), dtype=np.uint8)
    top = height // 2
    image[:top] = _grey(index)
    bits = [1] + [(index >> (DATA_BITS - 1 - b)) & 1 for b in range(DATA_BITS)] + [0]
    columns = np.arange(width) * BARS // width  # bar number of each column
    values = np.where(np.array(bits, dtype=bool)[columns], 255, 0).astype(np.uint8)
    image[top:] = values[np.newaxis, :, np.newaxis]
    return image


def read_index(rgb: NDArray[np.uint8]) -> int:
    """The frame index drawn by :func:`pattern` in an output frame (any size >= 64x32).

    Raises ``ValueError`` when the picture holds no clean pattern (blended, turned, mirrored).
    """
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an RGB(A) array, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    if width < 64 or height < 32:
        raise ValueError(f"picture {width}x{height} is too small to read")
    luma = rgb[:, :, :3].astype(np.float64).mean(axis=2)
    band = luma[int(height * 0.6) : int(height * 0.9)]
    bits = []
    for bar in range(BARS):
        left = math.ceil((bar + 1 / 3) * width / BARS)
        right = max(left + 1, math.floor((bar + 2 / 3) * width / BARS))
        level = float(band[:, left:right].mean())
        if level <= DARK_MAX:
            bits.append(0)
        elif level >= LIGHT_MIN:
            bits.append(1)
        else:
            raise ValueError(f"bar {bar} is neither black nor white (mean {level:.0f})")
    if bits[0] != 1 or bits[-1] != 0:
        raise ValueError(f"guard bars wrong ({bits[0]}, {bits[-1]}): turned or mirrored picture")
    index = 0
    for bit in bits[1:-1]:
        index = index * 2 + bit
    return index


def _encoder_options(codec: str, gop: int | None) -> dict[str, str]:
    options: dict[str, str] = {}
    if codec == "libx264":
        # veryfast keeps B-frames, so decode order differs from display order.
        options.update({"preset": "veryfast", "crf": "18"})
    elif codec == "mpeg4":
        options.update({"qscale": "3"})
    if gop is not None:
        options["g"] = str(gop)
    return options


def make_clip(
    path: str | os.PathLike[str],
    *,
    seconds: float,
    fps: int,
    width: int,
    height: int,
    codec: str | None = None,
    gop: int | None = None,
    rotate: int = 0,
    audio: bool = False,
    pix_fmt: str = "yuv420p",
) -> Path:
    """A clip of ``round(seconds * fps)`` frames; frame ``i`` has pts ``i / fps`` exactly.

    ``width`` x ``height`` is the coded (stored) size. ``rotate`` (0/90/180/270) is the
    clockwise display rotation, like the legacy ``rotate`` tag: it is written as the
    stream's display matrix, and the stored picture is turned so that the *displayed*
    picture is the upright :func:`pattern`. The container is chosen from the extension.
    """
    if rotate % 90 or not 0 <= rotate < 360:
        raise ValueError("rotate must be 0, 90, 180 or 270")
    out_path = Path(path)
    codec = codec or default_codec()
    turns = rotate // 90
    display_w, display_h = (height, width) if turns % 2 else (width, height)
    count = round(seconds * fps)
    if count - 1 > MAX_INDEX:
        raise ValueError(f"{count} frames do not fit the {DATA_BITS}-bit index")
    with av.open(str(out_path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = Fraction(1, fps)
        video.options = _encoder_options(codec, gop)
        if codec != "libx264" and gop is not None:
            video.codec_context.gop_size = gop
        if rotate:
            # PyAV's angle is counter-clockwise (as VideoFrame.rotation reads it back).
            video.set_display_rotation(-rotate)
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for i in range(count):
            # np.rot90 turns counter-clockwise: the stored picture is the displayed one
            # turned back, so a clockwise turn by ``rotate`` shows it upright.
            picture = np.ascontiguousarray(np.rot90(pattern(i, display_w, display_h), turns))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            _write_tone(out, sound, seconds)
    return out_path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    samples = round(seconds * AUDIO_RATE)
    chunk = 1024
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        t = (np.arange(start, start + n) / AUDIO_RATE).astype(np.float32)
        tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone[np.newaxis, :], format="fltp", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def make_audio_only(path: str | os.PathLike[str], seconds: float = 1.0) -> Path:
    """An AAC-in-MP4 file with a 440 Hz tone and no video stream."""
    out_path = Path(path)
    with av.open(str(out_path), "w") as out:
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        _write_tone(out, sound, seconds)
    return out_path


STILL_CODECS = {".png": ("png", "rgb24"), ".jpg": ("mjpeg", "yuvj420p"), ".bmp": ("bmp", "bgr24")}
"""Still-image encoders by file suffix, with a pixel format each accepts."""


def make_still_image(path: str | os.PathLike[str], width: int = 64, height: int = 48) -> Path:
    """A single-picture PNG, JPEG or BMP file (by ``path``'s suffix), written by FFmpeg's image2."""
    out_path = Path(path)
    codec, pix_fmt = STILL_CODECS[out_path.suffix]
    with av.open(str(out_path), "w", format="image2") as out:
        stream = out.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        frame = av.VideoFrame.from_ndarray(pattern(1, width, height), format="rgb24")
        for packet in stream.encode(frame.reformat(format=pix_fmt)):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_path


def make_empty(path: str | os.PathLike[str]) -> Path:
    """A zero-byte file."""
    out_path = Path(path)
    out_path.write_bytes(b"")
    return out_path


def make_garbage(path: str | os.PathLike[str], size: int = 64 * 1024, seed: int = 1) -> Path:
    """Deterministic random bytes."""
    out_path = Path(path)
    out_path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes())
    return out_path


def top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """``(type, offset, size)`` of each top-level ISO-BMFF box."""
    boxes = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            raise ValueError(f"bad box size {size} at {offset}")
        boxes.append((kind, offset, size))
        offset += size
    return boxes


def find_box(data: bytes, *path: bytes) -> bytes:
    """The body of the first box at ``path`` (e.g. ``b"moov", b"trak", b"edts", b"elst"``)."""
    body = data
    for kind in path:
        for found, offset, size in top_level_boxes(body):
            if found == kind:
                header = 16 if struct.unpack(">I", body[offset : offset + 4])[0] == 1 else 8
                body = body[offset + header : offset + size]
                break
        else:
            raise KeyError(f"no {kind!r} box")
    return body


def avif_repeats_forever(path: str | os.PathLike[str]) -> bool:
    """True when an animated AVIF asks to loop forever: its track's edit list has the
    repetition flag (AVIF 1.1, 9.3) and the track's duration is indefinite (FFmpeg writes
    INT64_MAX, libavif all ones; a finite repeat count writes count x length instead)."""
    data = Path(path).read_bytes()
    elst = find_box(data, b"moov", b"trak", b"edts", b"elst")
    tkhd = find_box(data, b"moov", b"trak", b"tkhd")
    repeats = int.from_bytes(elst[1:4], "big") & 1 == 1
    duration = tkhd[28:36] if tkhd[0] == 1 else tkhd[20:24]
    return repeats and int.from_bytes(duration, "big") >= (1 << (8 * len(duration) - 1)) - 1


def make_truncated_mp4(path: str | os.PathLike[str]) -> Path:
    """An MP4 whose ``moov`` box (written after ``mdat``, no faststart) is cut off."""
    out_path = Path(path)
    make_clip(out_path, seconds=1.0, fps=10, width=160, height=96)
    data = out_path.read_bytes()
    kinds = [kind for kind, _, _ in top_level_boxes(data)]
    moov = next(offset for kind, offset, _ in top_level_boxes(data) if kind == b"moov")
    if kinds.index(b"moov") < kinds.index(b"mdat"):
        raise RuntimeError("the muxer wrote moov first; cannot make a moov-less file")
    out_path.write_bytes(data[:moov])
    return out_path


def make_hls_playlist(
    path: str | os.PathLike[str], canary: str | os.PathLike[str], *, url: str | None = None
) -> Path:
    """An HLS media playlist whose one segment is ``canary`` (as a ``file://`` URL) or ``url``."""
    out_path = Path(path)
    segment = url if url is not None else Path(canary).resolve().as_uri()
    out_path.write_text(
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:2\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:2.0,\n"
        f"{segment}\n"
        "#EXT-X-ENDLIST\n"
    )
    return out_path


def make_ffconcat(
    path: str | os.PathLike[str], canary: str | os.PathLike[str], *, relative: bool = False
) -> Path:
    """An ``ffconcat`` script naming ``canary`` by absolute path or relative to the script."""
    out_path = Path(path)
    target = Path(canary)
    name = (
        os.path.relpath(target.resolve(), out_path.resolve().parent)
        if relative
        else str(target.resolve())
    )
    out_path.write_text(f"ffconcat version 1.0\nfile '{name}'\n")
    return out_path


def _riff_chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(id, data offset, data size)`` of the chunks in ``data[start:end]``, LIST recursed."""
    chunks = []
    offset = start
    while offset + 8 <= end:
        kind, size = struct.unpack("<4sI", data[offset : offset + 8])
        body = offset + 8
        chunks.append((kind, body, size))
        if kind in (b"RIFF", b"LIST"):
            chunks.extend(_riff_chunks(data, body + 4, body + size))
        offset = body + size + (size & 1)
    return chunks


def make_pixel_bomb(path: str | os.PathLike[str], side: int = 16_000) -> Path:
    """An AVI of raw video whose headers claim ``side`` x ``side`` pixels per frame.

    Raw video has no in-band size, so the container's claim is what FFmpeg believes:
    the AVI main header (``avih``) and the stream format (``strf`` BITMAPINFOHEADER) are
    patched; the packets stay 32x32.
    """
    out_path = Path(path)
    if out_path.suffix.lower() != ".avi":
        raise ValueError("the pixel bomb is an .avi")
    with av.open(str(out_path), "w") as out:
        video = out.add_stream("rawvideo", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "bgr24"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(pattern(i, 32, 32), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    data = bytearray(out_path.read_bytes())
    patched = 0
    for kind, body, _size in _riff_chunks(bytes(data), 0, len(data)):
        if kind == b"avih":
            struct.pack_into("<II", data, body + 32, side, side)  # dwWidth, dwHeight
            patched += 1
        elif kind == b"strf" and struct.unpack_from("<I", data, body)[0] >= 40:
            struct.pack_into("<ii", data, body + 4, side, side)  # biWidth, biHeight
            patched += 1
    if patched < 2:
        raise RuntimeError("AVI headers not found")
    out_path.write_bytes(bytes(data))
    return out_path


@dataclass(frozen=True)
class Animation:
    """An animated GIF/WebP as a viewer sees it: composited RGB frames and their timing."""

    format: str  # Pillow's: "GIF" or "WEBP"
    width: int
    height: int
    frames: list[NDArray[np.uint8]] = field(repr=False)
    durations_ms: list[int]
    loop: int | None  # 0 = forever; None = no loop instruction (plays once)

    @property
    def total_ms(self) -> int:
        return sum(self.durations_ms)

    def indices(self) -> list[int]:
        return [read_index(frame) for frame in self.frames]

    def shown_at(self, ms: float) -> int:
        """Index of the source frame a viewer sees ``ms`` milliseconds into the animation."""
        end = 0
        for frame, duration in zip(self.frames, self.durations_ms, strict=True):
            end += duration
            if ms < end:
                return read_index(frame)
        return read_index(self.frames[-1])


def decode_animation(path: str | os.PathLike[str]) -> Animation:
    """Every frame of an animated image, composited (disposal, transparency) by Pillow, or of
    an MP4 by PyAV (its loop is the page's ``<video loop>``, so ``loop`` is None)."""
    if str(path).endswith(".mp4"):
        return _decode_video(path)
    with Image.open(path) as image:
        frames = []
        durations = []
        count = getattr(image, "n_frames", 1)
        loop = image.info.get("loop")
        for number in range(count):
            image.seek(number)
            image.load()  # WebP fills in the frame's duration on load
            durations.append(int(image.info.get("duration", 0)))
            frames.append(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
        return Animation(
            format=str(image.format),
            width=image.width,
            height=image.height,
            frames=frames,
            durations_ms=durations,
            loop=None if loop is None else int(loop),
        )


def _decode_video(path: str | os.PathLike[str]) -> Animation:
    """A player shows frame k from its pts to the next one's, the last one until the track
    ends (its edit list); MP4's per-sample durations are in decoding order, so unused."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None and stream.duration is not None
        frames = []
        starts = []
        for frame in container.decode(stream):
            assert frame.pts is not None
            starts.append(frame.pts)
            frames.append(frame.to_ndarray(format="rgb24"))
        ends = [*starts[1:], (stream.start_time or 0) + stream.duration]
        durations = [
            round(1000 * (b - a) * stream.time_base) for a, b in zip(starts, ends, strict=True)
        ]
        return Animation(
            format="MP4",
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            frames=frames,
            durations_ms=durations,
            loop=None,
        )
