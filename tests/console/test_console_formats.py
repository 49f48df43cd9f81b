"""AVIF and MP4 outputs in the console, in headless Chromium against a real ``anigraph serve``:
the AVIF as an ``<img>`` that animates and loops, the MP4 as a muted, looping, inline
``<video>`` that plays. What is asserted is what the page shows (element screenshots, the
media elements' state), not the markup alone."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from service_harness import Server, Vod

from media_factory import make_clip

CLIP_SECONDS = 2.0  # 20 output frames at 10 fps, each with its own grey in the top half


def _grey_on_screen(element: Any) -> float:
    """Mean grey of the top half of what the element shows (the clip's frame-index grey)."""
    shot = Image.open(io.BytesIO(element.screenshot())).convert("L")
    top = np.asarray(shot)[: shot.height // 2]
    return float(top.mean())


def _create_flow(vod: Vod, name: str) -> None:
    definitions = []
    for fmt in ("avif", "mp4"):
        created = vod(
            "CreateAnimatedGraphicsTemplate",
            {"Name": f"console {fmt}", "Format": fmt, "Width": 320, "Fps": 10, "Quality": 75},
        )
        definitions.append(created["Definition"])
    vod(
        "CreateProcedureTemplate",
        {
            "Name": name,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": d, "StartTimeOffset": 0, "EndTimeOffset": CLIP_SECONDS}
                    for d in definitions
                ]
            },
        },
    )


def test_avif_and_mp4_outputs_play_in_the_console(
    page: Any, console_server: Server, console_log: Any, artifacts: Path, tmp_path: Path
) -> None:
    _create_flow(Vod(console_server, console_server.default_key()), "console-formats")
    key = console_server.default_key()
    page.goto(f"{console_server.url}/console")
    page.get_by_label("SecretId").fill(key["SecretId"])
    page.get_by_label("SecretKey").fill(key["SecretKey"])
    page.get_by_role("button", name="Sign in").click()

    clip = make_clip(
        tmp_path / "formats-clip.mp4", seconds=CLIP_SECONDS, fps=25, width=320, height=180
    )
    # Signing in opens the Media page (a click on its link now would render it twice).
    page.get_by_label("Video file").wait_for()
    page.get_by_label("Task flow").select_option("console-formats")
    page.get_by_label("Video file").set_input_files(str(clip))
    page.get_by_role("button", name="Upload").click()
    page.get_by_text(re.compile(r"Uploaded: FileId \d+")).wait_for(timeout=30_000)

    page.get_by_role("navigation").get_by_role("link", name="Tasks", exact=True).click()
    page.locator("a[href^='#/tasks/']").first.click()
    image = page.locator("figure.output img").first
    video = page.locator("figure.output video").first
    image.wait_for(timeout=90_000)
    video.wait_for(timeout=90_000)
    # The detail stops refreshing once the task is done; wait for that so nothing re-renders.
    page.get_by_text("FINISH").first.wait_for(timeout=30_000)

    # AVIF: decoded by the browser at the template's size, and animating.
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=15_000
    )
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [320, 180]
    assert page.get_by_role("link", name=re.compile(r"Download .*\.avif")).count() == 1

    # MP4: the browser can play it, and it does: muted, inline, looping, time advancing.
    # (Chromium holds a muted autoplaying video that is out of view: keep both in view.)
    page.set_viewport_size({"width": 1280, "height": 2400})
    video.scroll_into_view_if_needed()
    assert video.evaluate("v => v.canPlayType('video/mp4')") != ""
    page.wait_for_function("v => v.readyState >= 2 && !v.paused", arg=video.element_handle())
    state = video.evaluate(
        "v => ({muted: v.muted, loop: v.loop, inline: v.playsInline, autoplay: v.autoplay,"
        " controls: v.controls, width: v.videoWidth, height: v.videoHeight,"
        " duration: v.duration, error: v.error && v.error.code})"
    )
    assert state["muted"] and state["loop"] and state["inline"] and state["autoplay"]
    assert not state["controls"] and state["error"] is None
    assert (state["width"], state["height"]) == (320, 180)
    assert abs(state["duration"] - CLIP_SECONDS) < 0.05
    assert page.get_by_role("link", name=re.compile(r"Download .*\.mp4")).count() == 1
    page.screenshot(path=str(artifacts / "formats-task-detail.png"), full_page=True)

    # Both have now been on screen for longer than they last: still moving means looping
    # (a GIF-like image that plays once stops on its last frame). Sample for more than a loop.
    page.wait_for_timeout(CLIP_SECONDS * 1000 + 300)
    greys: list[float] = []
    times: list[float] = []
    for _ in range(16):
        greys.append(_grey_on_screen(image))
        times.append(video.evaluate("v => v.currentTime"))
        page.wait_for_timeout(150)
    assert len({round(grey) for grey in greys}) >= 4, f"the AVIF stopped: {greys}"
    assert any(b < a for a, b in itertools.pairwise(times)), f"no loop: {times}"
    assert max(times) - min(times) > 0.5 * CLIP_SECONDS, f"the video stalled: {times}"
    assert console_log.errors == []
