"""The ``anigraph`` command as a user runs it: a real subprocess, its stdout, stderr and status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from media_factory import decode_animation, make_still_image


def anigraph(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anigraph", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_probe_prints_tencent_metadata(clip_with_audio: Path) -> None:
    done = anigraph("probe", clip_with_audio)
    assert done.returncode == 0, done.stderr
    meta = json.loads(done.stdout)
    assert meta["Container"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert (meta["Width"], meta["Height"], meta["Rotate"]) == (320, 180, 0)
    assert meta["Duration"] == pytest.approx(3.0, abs=0.1)
    assert meta["VideoStreamSet"][0]["Codec"] == "h264"
    assert meta["VideoStreamSet"][0]["Fps"] == 25
    assert meta["AudioStreamSet"][0]["Codec"] == "aac"
    assert meta["Size"] == clip_with_audio.stat().st_size


def test_convert_json_output_item(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gif"
    done = anigraph(
        "convert",
        clip,
        out,
        "--width",
        "160",
        "--fps",
        "10",
        "--start",
        "1",
        "--end",
        "2.5",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)
    assert set(item) >= {
        "Width",
        "Height",
        "Container",
        "Size",
        "Bitrate",
        "Md5",
        "StartTimeOffset",
        "EndTimeOffset",
        "FrameCount",
        "Duration",
    }
    assert (item["Width"], item["Height"], item["Container"]) == (160, 90, "gif")
    assert item["Size"] == out.stat().st_size
    assert (item["StartTimeOffset"], item["EndTimeOffset"]) == (1.0, 2.5)
    assert item["FrameCount"] == len(decode_animation(out).frames) == 15
    assert item["Bitrate"] == round(item["Size"] * 8 / 1.5)


def test_convert_webp_preset_by_extension(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.webp"
    done = anigraph("convert", clip, out, "--definition", "20001", "--end", "2", "--json")
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)
    assert item["Container"] == "webp"
    assert decode_animation(out).format == "WEBP"


def test_convert_plain_output_line(clip: Path, tmp_path: Path) -> None:
    done = anigraph("convert", clip, tmp_path / "a.gif", "--end", "1", "--fps", "5")
    assert done.returncode == 0, done.stderr
    assert "5 frames" in done.stdout and "gif" in done.stdout


@pytest.mark.parametrize(
    ("fixture", "code"),
    [
        ("garbage", "SourceFileError.ContentMalformed"),
        ("truncated_mp4", "SourceFileError.ContentMalformed"),
        ("audio_only", "SourceFileError.NoVideoMedia"),
    ],
)
def test_convert_failure_is_one_line_and_leaves_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, code: str
) -> None:
    out = tmp_path / "out.gif"
    done = anigraph("convert", request.getfixturevalue(fixture), out)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(code + ": "), done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_convert_bad_offsets(clip: Path, tmp_path: Path) -> None:
    done = anigraph("convert", clip, tmp_path / "o.gif", "--start", "4", "--end", "2")
    assert done.returncode == 1
    assert done.stderr.startswith("InvalidInput.InvalidTimeOffset: ")


@pytest.mark.parametrize(
    "args",
    [
        ["--fps", "0"],
        ["--fps", "51"],
        ["--width", "5000"],
        ["--quality", "0"],
        ["--format", "png"],
        ["--resolution-adaptive", "maybe"],
    ],
)
def test_usage_errors_exit_2_with_one_line(clip: Path, tmp_path: Path, args: list[str]) -> None:
    done = anigraph("convert", clip, tmp_path / "o.gif", *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_definition(clip: Path, tmp_path: Path) -> None:
    done = anigraph("convert", clip, tmp_path / "o.gif", "--definition", "12345")
    assert done.returncode == 1
    assert done.stderr.startswith("InvalidInput.DefinitionNotExist: ")


def test_unknown_output_extension_without_format(clip: Path, tmp_path: Path) -> None:
    done = anigraph("convert", clip, tmp_path / "o.png")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1


def test_probe_missing_file(tmp_path: Path) -> None:
    done = anigraph("probe", tmp_path / "missing.mp4")
    assert done.returncode == 1
    missing = tmp_path / "missing.mp4"
    assert done.stderr == f"SourceFileError: source file does not exist: {missing}\n"


def test_probe_of_a_still_image_is_one_line(tmp_path: Path) -> None:
    done = anigraph("probe", make_still_image(tmp_path / "still.png"))
    assert done.returncode == 1
    assert done.stderr.startswith("SourceFileError.ContentUnsupported: ")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "extra", "fmt"),
    [
        pytest.param("out.avif", [], "avif", id="avif-by-name"),
        pytest.param("out.mp4", [], "mp4", id="mp4-by-name"),
        pytest.param("out.loop", ["--format", "mp4"], "mp4", id="mp4-by-flag"),
    ],
)
def test_convert_to_avif_and_mp4(
    clip: Path, tmp_path: Path, name: str, extra: list[str], fmt: str
) -> None:
    out = tmp_path / name
    done = anigraph(
        "convert", clip, out, "--width", "161", "--fps", "10", "--end", "1", "--json", *extra
    )
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)
    assert item["Container"] == fmt
    # 161 x 90.56: MP4 rounds each side down to even, AVIF keeps 161 x 91.
    assert (item["Width"], item["Height"]) == ((160, 90) if fmt == "mp4" else (161, 91))
    if fmt == "mp4":
        out = out.rename(out.with_suffix(".mp4"))  # decode_animation picks PyAV by the name
    anim = decode_animation(out)
    assert (anim.width, anim.height) == (item["Width"], item["Height"])
    assert len(anim.frames) == item["FrameCount"] == 10
    assert anim.total_ms == 1000
