"""One test per class of bad input: each fails with the right ErrCodeExt, before any output
file exists, and FFmpeg is never allowed to open anything but the named local file."""

from __future__ import annotations

from pathlib import Path

import pytest

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media.animate import animate
from anigraph.media.probe import probe
from anigraph.media.types import AnimateParams, Limits, OutputFormat
from media_factory import make_clip, make_ffconcat, make_hls_playlist, make_still_image


def fails_with(code: ErrCodeExt, source: Path, tmp_path: Path, **limits: object) -> TaskError:
    out = tmp_path / "out.gif"
    with pytest.raises(TaskError) as caught:
        animate(source, out, AnimateParams(fps=5), Limits(**limits))  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value
    assert caught.value.message
    assert list(tmp_path.glob("out.gif*")) == []  # neither the output nor its .part
    return caught.value


@pytest.mark.parametrize("name", ["empty_file", "garbage", "truncated_mp4"])
def test_malformed_sources(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source = request.getfixturevalue(name)
    fails_with(ErrCodeExt.CONTENT_MALFORMED, source, tmp_path)
    with pytest.raises(TaskError) as caught:
        probe(source)
    assert caught.value.code == ErrCodeExt.CONTENT_MALFORMED


def test_truncated_mp4_says_what_is_missing(truncated_mp4: Path, tmp_path: Path) -> None:
    error = fails_with(ErrCodeExt.CONTENT_MALFORMED, truncated_mp4, tmp_path)
    assert "moov" in error.message.lower() or "invalid data" in error.message.lower()


def test_audio_only_has_no_video(audio_only: Path, tmp_path: Path) -> None:
    fails_with(ErrCodeExt.NO_VIDEO_MEDIA, audio_only, tmp_path)
    meta = probe(audio_only)  # probing an audio file is fine: it has metadata
    assert meta.VideoStreamSet == [] and len(meta.AudioStreamSet) == 1
    assert (meta.Width, meta.Height, meta.VideoDuration) == (0, 0, 0.0)
    assert meta.AudioDuration == pytest.approx(1.0, abs=0.05)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskError) as caught:
        animate(tmp_path / "nope.mp4", tmp_path / "out.gif", AnimateParams(fps=5))
    assert caught.value.code.value.startswith("SourceFileError")
    assert not (tmp_path / "out.gif").exists()


def test_hls_playlist_refused_and_never_followed(clip: Path, tmp_path: Path) -> None:
    playlist = make_hls_playlist(tmp_path / "list.m3u8", clip)
    fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, playlist, tmp_path)
    # Disguised under a video extension, it is still sniffed and refused.
    disguised = make_hls_playlist(tmp_path / "list.mp4", clip)
    fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, disguised, tmp_path)


def test_hls_playlist_pointing_at_a_url_refused(tmp_path: Path) -> None:
    playlist = make_hls_playlist(tmp_path / "remote.m3u8", "", url="http://127.0.0.1:9/seg.ts")
    fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, playlist, tmp_path)


@pytest.mark.parametrize("relative", [False, True])
def test_ffconcat_refused(clip: Path, tmp_path: Path, relative: bool) -> None:
    script = make_ffconcat(tmp_path / "list.ffconcat", clip, relative=relative)
    fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, script, tmp_path)
    disguised = make_ffconcat(tmp_path / "list.mov", clip, relative=relative)
    fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, disguised, tmp_path)


@pytest.mark.parametrize("prefix", ["concat:", "subfile:", "file:"])
def test_protocol_looking_names_are_plain_files(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    """A file literally named ``concat:a.mp4|b.mp4`` is that file, never FFmpeg's protocol."""
    monkeypatch.chdir(tmp_path)
    name = f"{prefix}{clip.name}|{clip.name}" if prefix == "concat:" else f"{prefix}{clip.name}"
    # No such file: the protocol would have opened the clip; a plain file open fails.
    with pytest.raises(TaskError) as caught:
        animate(Path(name), tmp_path / "out.gif", AnimateParams(fps=5))
    assert caught.value.code.value.startswith("SourceFileError")
    # With a real file of that name, it is read as what it is.
    make_clip(tmp_path / name, seconds=0.4, fps=10, width=64, height=48)
    result = animate(Path(name), tmp_path / "out.gif", AnimateParams(fps=5))
    assert result.FrameCount == 2


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_still_images_are_unsupported_content(suffix: str, tmp_path: Path) -> None:
    """FFmpeg recognises a still image as a demuxer outside the whitelist (EINVAL at open)."""
    still = make_still_image(tmp_path / f"still{suffix}")
    fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, still, tmp_path)
    with pytest.raises(TaskError) as caught:
        probe(still)
    assert caught.value.code == ErrCodeExt.CONTENT_UNSUPPORTED


def test_pixel_bomb_refused_before_decoding(pixel_bomb: Path, tmp_path: Path) -> None:
    error = fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, pixel_bomb, tmp_path)
    assert "16000" in error.message


def test_source_pixel_limit_is_a_setting(clip: Path, tmp_path: Path) -> None:
    fails_with(ErrCodeExt.CONTENT_UNSUPPORTED, clip, tmp_path, max_source_pixels=320 * 179)


def test_frame_limit(clip: Path, tmp_path: Path) -> None:
    fails_with(ErrCodeExt.CONFIGURATION_UNSUPPORTED, clip, tmp_path, max_frames=10)


def test_duration_limit(clip: Path, tmp_path: Path) -> None:
    fails_with(ErrCodeExt.CONFIGURATION_UNSUPPORTED, clip, tmp_path, max_segment_seconds=2.0)


def test_output_size_limit(clip: Path, tmp_path: Path) -> None:
    fails_with(ErrCodeExt.RESULT_FILE_TOO_LARGE, clip, tmp_path, max_output_bytes=10_000)


def test_wall_time_deadline(clip: Path, tmp_path: Path) -> None:
    import time

    out = tmp_path / "out.gif"
    with pytest.raises(TaskError) as caught:
        animate(clip, out, AnimateParams(fps=10), deadline=time.monotonic() - 1)
    assert caught.value.code == ErrCodeExt.INTERNAL_ERROR
    assert caught.value.code.retryable
    assert list(tmp_path.glob("out.gif*")) == []


@pytest.mark.parametrize(("start", "end"), [(3.0, 3.0), (5.0, 2.0), (7.0, 0), (-1.0, -2.0)])
def test_bad_offsets(clip: Path, tmp_path: Path, start: float, end: float) -> None:
    out = tmp_path / "out.webp"
    with pytest.raises(TaskError) as caught:
        animate(clip, out, AnimateParams(format=OutputFormat.WEBP, start=start, end=end))
    assert caught.value.code == ErrCodeExt.INVALID_TIME_OFFSET
    assert not out.exists()
