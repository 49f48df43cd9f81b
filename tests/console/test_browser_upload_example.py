"""examples/browser-upload: Tencent's vod-js-sdk-v6 in headless Chromium uploads to anigraph with
only a signature from the example's app server, and the signed task flow runs.

The SDK comes from npm into ``tests/node_sdk`` (its package.json; ``.ci/run`` installs it, and
the fixture does when npm is there). Without node/npm the test skips, unless ``CI`` is set: then
it fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_harness import PROXY_VARIABLES, Server, Vod, free_port, wait_for_task

from media_factory import make_clip

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "browser-upload"
NODE_DIR = ROOT / "tests" / "node_sdk"
SDK_BUNDLE = NODE_DIR / "node_modules" / "vod-js-sdk-v6" / "dist" / "vod-js-sdk-v6.js"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the browser upload example needs vod-js-sdk-v6: {reason}")
    pytest.skip(f"the browser upload example needs vod-js-sdk-v6: {reason}")


@pytest.fixture(scope="module")
def sdk_bundle() -> Path:
    if not SDK_BUNDLE.is_file():
        if shutil.which("node") is None or shutil.which("npm") is None:
            _unavailable("node and npm are not installed (bash .ci/run installs them)")
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--prefix",
             str(NODE_DIR)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0 or not SDK_BUNDLE.is_file():
            _unavailable(f"npm install failed: {done.stderr[-500:]}")
    return SDK_BUNDLE


@pytest.fixture
def app_server(console_server: Server, sdk_bundle: Path, flow: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env.update(
        ANIGRAPH_PORT=str(console_server.port), ANIGRAPH_DATA_DIR=str(console_server.data_dir)
    )
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "app.py"), "--port", str(port), "--sdk", str(sdk_bundle),
         "--procedure", flow],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/config.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the example app server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def flow(console_server: Server) -> str:
    name = f"web-{secrets.token_hex(3)}"
    Vod(console_server, console_server.default_key())(
        "CreateProcedureTemplate",
        {
            "Name": name,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": 20000, "StartTimeOffset": 0, "EndTimeOffset": 1}
                ]
            },
        },
    )
    return name


def test_browser_upload_example(
    page: Any,
    console_server: Server,
    console_log: Any,
    artifacts: Path,
    app_server: str,
    tmp_path: Path,
) -> None:
    clip = make_clip(tmp_path / "from-browser.mp4", seconds=2.0, fps=10, width=160, height=90)
    page.goto(app_server)
    page.get_by_label("Video file").set_input_files(str(clip))
    page.get_by_role("button", name="Upload").click()
    result = page.get_by_role("status")
    page.wait_for_function(
        "el => /Uploaded|failed/.test(el.textContent)", arg=result.element_handle(), timeout=60_000
    )
    page.screenshot(path=str(artifacts / "50-browser-upload-example.png"), full_page=True)
    text = result.inner_text()
    assert text.startswith("Uploaded: FileId "), text
    assert page.get_by_label("Upload progress").evaluate("el => el.value") == 100
    file_id = text.split()[2].rstrip(",")
    vod = Vod(console_server, console_server.default_key())
    (media,) = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"]
    assert media["BasicInfo"]["Name"] == "from-browser"
    assert media["MetaData"]["Width"] == 160
    task_id = text.rsplit(" ", 1)[1]
    detail = wait_for_task(vod, task_id, timeout=120)
    (item,) = detail["ProcedureTask"]["MediaProcessResultSet"]
    assert item["AnimatedGraphicTask"]["Status"] == "SUCCESS", item
    assert console_log.errors == []
