"""What AVIF and MP4 outputs promise beyond the frames and timing of test_animate.py: the
container (AVIF loops forever; MP4 is H.264 4:2:0, video only, index first), the sizes each
codec allows, the colour tags, Quality, and the limits."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import av
import numpy as np
import pytest

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.media.animate import animate
from anigraph.media.quality import choices_for
from anigraph.media.types import AnimateParams, Limits, OutputFormat, Result
from media_factory import avif_repeats_forever, decode_animation, top_level_boxes

AVIF = OutputFormat.AVIF
MP4 = OutputFormat.MP4
CLOSE = ResolutionAdaptive.CLOSE
# FFmpeg's AVColorSpace SMPTE 170M (BT.601) and AVColorRange MPEG (limited).
BT601 = 6
LIMITED = 1


def run(source: Path, out: Path, **params: object) -> Result:
    return animate(source, out, AnimateParams(**params))  # type: ignore[arg-type]


def test_avif_is_an_image_sequence_that_loops_forever(clip: Path, tmp_path: Path) -> None:
    result = run(clip, tmp_path / "out.avif", format=AVIF, end=1.0, fps=5)
    data = Path(result.path).read_bytes()
    kinds = [kind for kind, _, _ in top_level_boxes(data)]
    assert kinds[0] == b"ftyp" and data[8:12] == b"avis"  # major brand: AVIF image sequence
    assert b"avif" in data[16 : 8 + int.from_bytes(data[:4], "big")]  # still readable as AVIF
    assert avif_repeats_forever(result.path)
    with av.open(result.path) as container:
        # The still image a non-animating reader shows is AV1 too.
        assert container.streams.video[0].codec_context.name in ("libdav1d", "av1")


def test_mp4_is_h264_video_only_with_its_index_first(clip_with_audio: Path, tmp_path: Path) -> None:
    result = run(clip_with_audio, tmp_path / "out.mp4", format=MP4, end=2.0, fps=10)
    kinds = [kind for kind, _, _ in top_level_boxes(Path(result.path).read_bytes())]
    # moov before mdat: a browser starts playing before the download ends.
    assert kinds.index(b"moov") < kinds.index(b"mdat")
    with av.open(result.path) as container:
        assert len(container.streams) == 1  # the source's audio is not carried
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.profile == "High"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.frames == result.FrameCount == 20


@pytest.mark.parametrize(
    ("width", "height", "avif", "mp4"),
    [
        pytest.param(161, 0, (161, 91), (160, 90), id="odd-width-derived-odd-height"),
        pytest.param(200, 101, (200, 101), (200, 100), id="odd-height-given"),
        pytest.param(0, 0, (320, 180), (320, 180), id="source-size"),
        # Below what each codec encodes: SVT-AV1 needs 4x4, H.264 2x2.
        pytest.param(3, 1, (4, 4), (2, 2), id="tiny"),
    ],
)
def test_each_codec_gets_a_size_it_can_encode(
    clip: Path,
    tmp_path: Path,
    width: int,
    height: int,
    avif: tuple[int, int],
    mp4: tuple[int, int],
) -> None:
    for fmt, expected in ((AVIF, avif), (MP4, mp4)):
        result = run(
            clip,
            tmp_path / f"out.{fmt}",
            format=fmt,
            width=width,
            height=height,
            resolution_adaptive=CLOSE,
            start=1.0,
            end=1.5,
            fps=10,
        )
        anim = decode_animation(result.path)
        assert (result.Width, result.Height) == (anim.width, anim.height) == expected
        assert len(anim.frames) == 5
        if expected[0] >= 64:
            assert anim.indices() == [25, 27, 30, 32, 35]


@pytest.mark.parametrize("fmt", [AVIF, MP4])
def test_colour_matrix_and_range_are_tagged(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    """Untagged, each player guesses the matrix (and they guess differently)."""
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, end=0.5, fps=10)
    with av.open(result.path) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        assert (stream.codec_context.colorspace, stream.codec_context.color_range) == (
            BT601,
            LIMITED,
        )
        assert (frame.colorspace, frame.color_range) == (BT601, LIMITED)


def test_quality_maps_to_each_encoders_factor() -> None:
    # The stated anchors (media/quality.py), and lower Quality never means a better factor.
    default = choices_for(75)
    assert (default.avif_crf, default.x264_crf) == (36, 26.0)
    assert (choices_for(90).avif_crf, choices_for(90).x264_crf) == (10, 15.0)
    assert (choices_for(1).avif_crf, choices_for(1).x264_crf) == (63, 51.0)
    crfs = [(choices_for(q).avif_crf, choices_for(q).x264_crf) for q in range(1, 101)]
    assert all(a[0] >= b[0] and a[1] >= b[1] for a, b in itertools.pairwise(crfs))


@pytest.mark.parametrize("fmt", [AVIF, MP4])
def test_higher_quality_gives_more_bytes_and_truer_frames(
    real_clips: dict[str, Path], tmp_path: Path, fmt: OutputFormat
) -> None:
    sizes = []
    errors = []
    for quality in (40, 90):
        result = run(
            real_clips["bikes"],
            tmp_path / f"q{quality}.{fmt}",
            format=fmt,
            width=320,
            start=1.0,
            end=1.5,
            fps=10,
            quality=quality,
        )
        high = run(
            real_clips["bikes"],
            tmp_path / f"ref{quality}.webp",
            format=OutputFormat.WEBP,
            width=320,
            start=1.0,
            end=1.5,
            fps=10,
            quality=100,
        )
        reference = decode_animation(high.path).frames
        frames = decode_animation(result.path).frames
        sizes.append(result.Size)
        errors.append(
            np.mean(
                [
                    np.abs(a.astype(int) - b.astype(int)).mean()
                    for a, b in zip(frames, reference, strict=True)
                ]
            )
        )
    assert sizes[0] < sizes[1]
    assert errors[0] > errors[1]


@pytest.mark.parametrize("fmt", [AVIF, MP4])
def test_output_limit_leaves_no_file(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    with pytest.raises(TaskError) as caught:
        animate(
            clip,
            tmp_path / f"out.{fmt}",
            AnimateParams(format=fmt, end=2.0, fps=10),
            Limits(max_output_bytes=1000),
        )
    assert caught.value.code is ErrCodeExt.RESULT_FILE_TOO_LARGE
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("fmt", "codec"), [(AVIF, "libsvtav1"), (MP4, "libx264")])
def test_a_missing_encoder_is_a_clear_configuration_error(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: OutputFormat, codec: str
) -> None:
    monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) - {codec})
    with pytest.raises(TaskError) as caught:
        run(clip, tmp_path / f"out.{fmt}", format=fmt, end=1.0, fps=5)
    assert caught.value.code is ErrCodeExt.CONFIGURATION_UNSUPPORTED
    assert codec in str(caught.value)
    assert os.listdir(tmp_path) == []
