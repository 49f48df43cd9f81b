"""The web console end to end, in headless Chromium against a real ``anigraph serve``.

Screenshots of each step go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from service_harness import Server, Vod

from media_factory import make_clip


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def _nav(page: Any, name: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()


def _sign_in(page: Any, server: Server, secret_key: str | None = None) -> None:
    key = server.default_key()
    page.goto(f"{server.url}/console")
    page.get_by_label("SecretId").fill(key["SecretId"])
    page.get_by_label("SecretKey").fill(secret_key or key["SecretKey"])
    page.get_by_role("button", name="Sign in").click()


def test_assets_are_served(console_server: Server) -> None:
    for path, kind in [
        ("/console", "text/html"),
        ("/console/", "text/html"),
        ("/console/static/js/main.js", "javascript"),
        ("/console/static/js/pages/templates.js", "javascript"),
        ("/console/static/css/console.css", "text/css"),
    ]:
        answer = httpx.get(f"{console_server.url}{path}")
        assert answer.status_code == 200, path
        assert kind in answer.headers["content-type"], (path, answer.headers["content-type"])
        assert answer.headers["cache-control"] == "no-cache"
    assert httpx.get(f"{console_server.url}/console/static/nope.js").status_code == 404


def test_bad_key_shows_the_api_error(
    page: Any, console_server: Server, console_log: Any, artifacts: Path
) -> None:
    _sign_in(page, console_server, secret_key="wrong-secret-key-wrong-secret-key")
    alert = page.locator(".notice.error")
    alert.wait_for()
    assert "AuthFailure.SignatureFailure" in alert.inner_text()
    assert page.get_by_role("link", name="Templates").is_hidden()
    _shot(page, artifacts, "00-bad-key")
    assert console_log.errors == []


def test_console_end_to_end(
    page: Any,
    console_server: Server,
    console_log: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    # Sign in: the navigation appears with the key's SubAppId.
    _sign_in(page, console_server)
    for name in ("Media", "Process", "Templates", "Task flows", "Tasks", "Events"):
        page.get_by_role("navigation").get_by_role("link", name=name, exact=True).wait_for()
    sub_app = console_server.default_key()["SubAppId"]
    assert f"SubAppId {sub_app}" in page.locator("#who").inner_text()
    page.locator("#main .table-wrap > *").first.wait_for()
    page.wait_for_load_state("networkidle")
    _shot(page, artifacts, "01-signed-in")
    # What the screenshot shows: the Media page, once.
    assert page.get_by_role("heading", level=1).all_inner_texts() == ["Media"]
    assert page.locator("form[aria-label='Upload']").count() == 1
    assert page.locator("#main .table-wrap").count() == 1

    # Templates: presets are listed; an invalid Fps shows its error next to the field.
    _nav(page, "Templates")
    page.get_by_role("cell", name="Preset GIF", exact=True).wait_for()
    page.get_by_label("Name", exact=True).fill("console small")
    page.get_by_label("Width").fill("160")
    page.get_by_label("Fps").fill("31")
    page.get_by_role("button", name="Create template").click()
    fps_error = page.locator("#" + page.get_by_label("Fps").get_attribute("aria-describedby"))
    fps_error.wait_for()
    assert fps_error.get_attribute("role") == "alert"
    assert "Fps" in fps_error.inner_text() or "fps" in fps_error.inner_text().lower()
    assert page.get_by_label("Fps").get_attribute("aria-invalid") == "true"
    _shot(page, artifacts, "02-template-invalid-fps")

    page.get_by_label("Fps").fill("8")
    page.get_by_label("Quality", exact=True).fill("80")
    page.get_by_role("button", name="Create template").click()
    created = page.locator(".notice.info")
    created.wait_for()
    definition = re.search(r"Created template (\d+)", created.inner_text())
    assert definition is not None
    page.get_by_role("cell", name="console small", exact=True).wait_for()
    _shot(page, artifacts, "03-template-created")

    # Task flows: one step with the new template over the first second.
    _nav(page, "Task flows")
    page.get_by_label("Name", exact=True).fill("console-flow")
    page.get_by_role("checkbox", name=re.compile(r"^console small")).check()
    page.get_by_label("End of console small").fill("1")
    page.get_by_role("button", name="Create task flow").click()
    page.get_by_role("heading", name=re.compile("console-flow")).wait_for()
    _shot(page, artifacts, "04-flow-created")

    # Media: upload a real clip through the flow; the progress bar reaches 100 %.
    clip = make_clip(tmp_path / "console-clip.mp4", seconds=2.0, fps=25, width=320, height=180)
    _nav(page, "Media")
    page.get_by_label("Task flow").select_option("console-flow")
    page.get_by_label("Video file").set_input_files(str(clip))
    page.get_by_role("button", name="Upload").click()
    page.get_by_text(re.compile(r"Uploaded: FileId \d+")).wait_for(timeout=30_000)
    assert page.get_by_label("Upload progress").evaluate("el => el.value") == 100
    _shot(page, artifacts, "05-uploaded")
    # The list comes from SearchMedia: the upload is there, and a search narrows it.
    page.get_by_role("cell", name="console-clip").wait_for()
    page.get_by_label("Search by name").fill("no-such-name")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("No media matches.").wait_for()
    page.get_by_label("Search by name").fill("CONSOLE")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("cell", name="console-clip").wait_for()

    # Tasks: the flow's task finishes; its detail renders the animated output.
    _nav(page, "Tasks")
    task_link = page.locator("a[href^='#/tasks/']").first
    task_link.wait_for()
    _shot(page, artifacts, "06-tasks")
    task_link.click()
    image = page.locator("figure.output img").first
    image.wait_for(timeout=60_000)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=15_000
    )
    assert image.evaluate("img => img.naturalWidth") == 160
    facts = page.locator("figure.output").first.inner_text()
    assert "160 × 90" in facts
    assert re.search(r"[0-9a-f]{32}", facts)
    assert page.get_by_role("link", name=re.compile(r"Download .*\.gif")).count() == 1
    _shot(page, artifacts, "07-task-detail")

    # Media detail lists the same output; Process shows the player and the range controls.
    page.locator("a[href^='#/media/']").first.click()
    page.locator("figure.output img").first.wait_for()
    _shot(page, artifacts, "08-media-detail")
    _nav(page, "Process")
    page.get_by_role("button", name="Set start").wait_for()
    page.get_by_label("Start", exact=True).fill("0.5")
    page.get_by_label("End", exact=True).fill("1.5")
    page.get_by_role("checkbox", name=re.compile(r"^Preset GIF")).check()
    page.get_by_role("button", name="Start processing").click()
    page.get_by_text("Started task").wait_for()
    assert page.get_by_text("Started task").evaluate(
        "el => el.getBoundingClientRect().bottom <= window.innerHeight"
    )
    _shot(page, artifacts, "09-process")

    # Events: the configuration form and the dead-letter note.
    _nav(page, "Events")
    page.get_by_label("Mode").wait_for()
    page.get_by_text("anigraph events dead-letters").wait_for()
    _shot(page, artifacts, "10-events")

    # Phone width: the navigation wraps and nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    _nav(page, "Tasks")
    page.locator("a[href^='#/tasks/']").first.wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    _shot(page, artifacts, "11-phone-tasks")

    assert console_log.errors == []


def test_edit_and_delete_template_and_flow(
    page: Any, console_server: Server, console_log: Any, artifacts: Path
) -> None:
    vod = Vod(console_server, console_server.default_key())
    definition = vod("CreateAnimatedGraphicsTemplate", {"Fps": 5, "Name": "to-edit"})["Definition"]
    vod(
        "CreateProcedureTemplate",
        {
            "Name": "to-delete",
            "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
        },
    )
    page.on("dialog", lambda dialog: dialog.accept())
    _sign_in(page, console_server)

    _nav(page, "Templates")
    page.get_by_role("button", name="Edit to-edit").click()
    page.get_by_label("Fps").fill("12")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("cell", name="to-edit", exact=True).wait_for()
    page.wait_for_function("() => document.body.innerText.includes('12')", timeout=10_000)
    (row,) = vod("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})[
        "AnimatedGraphicsTemplateSet"
    ]
    assert row["Fps"] == 12 and row["Name"] == "to-edit"
    _shot(page, artifacts, "20-template-edited")
    page.get_by_role("button", name="Delete to-edit").click()
    page.get_by_role("cell", name="to-edit", exact=True).wait_for(state="detached")
    assert (
        vod("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})["TotalCount"] == 0
    )

    _nav(page, "Task flows")
    page.get_by_role("button", name="Delete to-delete").click()
    page.get_by_role("heading", name=re.compile("to-delete")).wait_for(state="detached")
    assert vod("DescribeProcedureTemplates", {"Names": ["to-delete"]})["TotalCount"] == 0
    _shot(page, artifacts, "21-flow-deleted")


def test_template_with_extension_fields(
    page: Any, console_server: Server, console_log: Any, artifacts: Path
) -> None:
    """MaxSize and LoopMode set through the form, shown in the list, stored through the API."""
    _sign_in(page, console_server)
    _nav(page, "Templates")
    page.get_by_role("cell", name="Preset GIF", exact=True).wait_for()
    page.get_by_label("Name", exact=True).fill("budgeted loop")
    page.get_by_label("Fps").fill("10")
    page.get_by_label("Max size (bytes)").fill("100")
    page.get_by_label("Loop mode").select_option("Boomerang")
    page.get_by_role("button", name="Create template").click()
    # Below the range: the error sits under Max size, like the other fields' errors.
    size = page.get_by_label("Max size (bytes)")
    size_error = page.locator("#" + size.get_attribute("aria-describedby"))
    size_error.wait_for()
    assert "MaxSize" in size_error.inner_text() and size.get_attribute("aria-invalid") == "true"
    _shot(page, artifacts, "30-template-max-size-invalid")

    size.fill("500000")
    page.get_by_role("button", name="Create template").click()
    created = page.locator(".notice.info")
    created.wait_for()
    found = re.search(r"Created template (\d+)", created.inner_text())
    assert found is not None
    definition = int(found.group(1))
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="budgeted loop"))
    extensions = row.locator('td[data-label="Extensions"]')
    extensions.wait_for()
    extensions.scroll_into_view_if_needed()
    _shot(page, artifacts, "31-template-extensions-listed")
    # What the screenshot shows: the new row, with its format and both extension fields.
    assert extensions.is_visible()
    assert extensions.inner_text() == "MaxSize 500000 · LoopMode Boomerang"
    assert row.locator('td[data-label="Format"]').inner_text() == "gif"
    plain = page.get_by_role("row").filter(has=page.get_by_role("cell", name="Preset GIF"))
    assert plain.locator('td[data-label="Extensions"]').inner_text() == "—"

    vod = Vod(console_server, console_server.default_key())
    (stored,) = vod.call_json("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})[
        "AnimatedGraphicsTemplateSet"
    ]
    assert (stored["MaxSize"], stored["LoopMode"], stored["SegmentMode"]) == (
        500000,
        "Boomerang",
        "Fixed",
    )
    vod("DeleteAnimatedGraphicsTemplate", {"Definition": definition})
    assert console_log.errors == []
