"""What a newcomer's first mistakes with the CLI print: one line that names the right thing."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

from media_factory import decode_animation
from test_cli import anigraph


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_version() -> None:
    done = anigraph("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"anigraph {version('anigraph')}"


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-clip.mp4"
    for args in (("probe", missing), ("convert", missing, tmp_path / "out.gif")):
        done = anigraph(*args)
        assert done.returncode == 1
        assert one_line(done) == f"SourceFileError: source file does not exist: {missing}"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_output_folder_is_named(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "not-made-yet"
    done = anigraph("convert", clip, folder / "out.gif")
    assert done.returncode == 2
    assert one_line(done) == f"error: output folder {folder} does not exist; create it first"
    assert not folder.exists()


def test_an_output_that_is_a_directory_is_refused_before_encoding(
    clip: Path, tmp_path: Path
) -> None:
    done = anigraph("convert", clip, tmp_path)
    assert done.returncode == 2
    assert one_line(done).startswith(f"error: output {tmp_path} is a directory; name a file")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_extension_lists_the_formats(clip: Path, tmp_path: Path) -> None:
    done = anigraph("convert", clip, tmp_path / "out.png")
    assert done.returncode == 2
    line = one_line(done)
    assert "'out.png'" in line and ".gif" in line and ".webp" in line and "--format" in line
    assert list(tmp_path.iterdir()) == []


def test_overwriting_is_stated_and_safe(clip: Path, tmp_path: Path) -> None:
    assert "an existing OUTPUT file is replaced" in " ".join(
        anigraph("convert", "--help").stdout.split()
    )
    out = tmp_path / "out.gif"
    out.write_bytes(b"old")
    failed = anigraph("convert", clip, out, "--start", "4", "--end", "2")
    assert failed.returncode == 1 and out.read_bytes() == b"old"
    done = anigraph("convert", clip, out, "--width", "160", "--fps", "5", "--end", "1")
    assert done.returncode == 0, done.stderr
    assert decode_animation(out).width == 160
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.gif"]


def test_config_example_is_a_working_config_file(tmp_path: Path) -> None:
    from anigraph.settings import Settings, example_toml, load

    done = anigraph("config-example")
    assert done.returncode == 0 and done.stdout == example_toml()
    (tmp_path / "anigraph.toml").write_text(done.stdout)
    assert load(config=tmp_path / "anigraph.toml") == Settings()
