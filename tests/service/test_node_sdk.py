"""Tencent's official Node.js SDK (``tencentcloud-sdk-nodejs-vod``) against a real server.

The endpoint is an IP with a port, the case that SDK signs differently from the Python one: the
credential scope's service is the endpoint's first DNS label (``127``) and the signed host has
no port while the sent Host header has one. The SDK lives in ``tests/node_sdk/node_modules``
(``npm install --prefix tests/node_sdk``, done by ``.ci/run``, or here on first use).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_harness import PROXY_VARIABLES, Server

NODE_DIR = Path(__file__).parents[1] / "node_sdk"
SDK = NODE_DIR / "node_modules" / "tencentcloud-sdk-nodejs-vod"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are not installed (Debian packages nodejs and npm)")
    assert node is not None and npm is not None
    if not SDK.is_dir():
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", NODE_DIR],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or not SDK.is_dir():
            _unavailable(f"npm could not install the Node.js SDK: {done.stderr[-500:]}")
    return node


def run_scenario(
    node: str,
    server: Server,
    scenario: str,
    *,
    sign_method: str = "TC3-HMAC-SHA256",
    req_method: str = "POST",
    file_id: str = "",
) -> dict[str, Any]:
    key = server.default_key()
    env = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
    env.update(
        ENDPOINT=server.endpoint,
        SECRET_ID=key["SecretId"],
        SECRET_KEY=key["SecretKey"],
        FILE_ID=file_id,
        SIGN_METHOD=sign_method,
        REQ_METHOD=req_method,
    )
    done = subprocess.run(
        [node, NODE_DIR / "scenario.js", scenario],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0 and "error" not in result, (result, done.stderr)
    return result


def test_full_scenario_with_tc3_at_an_ip_and_port(node: str, server: Server, file_id: str) -> None:
    assert server.endpoint.startswith("127.0.0.1:")
    result = run_scenario(node, server, "full", file_id=file_id)
    (template,) = result["described"]["AnimatedGraphicsTemplateSet"]
    assert template["Definition"] == result["definition"] and template["Fps"] == 5
    detail = result["detail"]
    assert detail["Status"] == "FINISH", detail
    (outcome,) = detail["ProcedureTask"]["MediaProcessResultSet"]
    task = outcome["AnimatedGraphicTask"]
    assert task["Status"] == "SUCCESS", task
    assert task["Output"]["Width"] == 128
    assert httpx.get(task["Output"]["Url"]).status_code == 200


@pytest.mark.parametrize(
    ("sign_method", "req_method"),
    [("TC3-HMAC-SHA256", "GET"), ("HmacSHA1", "POST"), ("HmacSHA256", "GET")],
)
def test_other_signing_modes(node: str, server: Server, sign_method: str, req_method: str) -> None:
    result = run_scenario(node, server, "describe", sign_method=sign_method, req_method=req_method)
    assert result["described"]["TotalCount"] >= 2  # the two presets at least
