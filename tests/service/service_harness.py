"""A real ``anigraph serve`` on loopback, and the official SDK pointed at it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
SIGN_MODES = [
    ("TC3-HMAC-SHA256", "POST"),
    ("TC3-HMAC-SHA256", "GET"),
    ("HmacSHA1", "POST"),
    ("HmacSHA1", "GET"),
    ("HmacSHA256", "POST"),
    ("HmacSHA256", "GET"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def anigraph(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "anigraph", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"anigraph {args} failed: {done.stderr}")
    return done


@dataclass
class Server:
    data_dir: Path
    port: int
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def start(self, timeout: float = 30) -> None:
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anigraph",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def default_key(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "default-key.json").read_text())

    def import_media(self, path: Path, sub_app_id: int | None = None) -> str:
        args: list[str | Path] = ["media", "import", path, "--data-dir", self.data_dir]
        args += ["--port", str(self.port), "--json"]
        if sub_app_id is not None:
            args += ["--sub-app-id", str(sub_app_id)]
        return str(json.loads(anigraph(*args).stdout)["FileId"])

    def create_key(self, sub_app_id: int) -> dict[str, Any]:
        done = anigraph(
            "keys", "create", "--data-dir", self.data_dir, "--sub-app-id", str(sub_app_id), "--json"
        )
        return dict(json.loads(done.stdout))


class Vod:
    """The official ``VodClient`` with dict in, dict out; SDK errors raise as they do for users."""

    def __init__(
        self,
        server: Server,
        key: dict[str, Any],
        sign_method: str = "TC3-HMAC-SHA256",
        req_method: str = "POST",
    ) -> None:
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.vod.v20180717 import vod_client

        for name in PROXY_VARIABLES:
            os.environ.pop(name, None)
        profile = ClientProfile(
            signMethod=sign_method,
            httpProfile=HttpProfile(
                endpoint=server.endpoint, protocol="http", reqMethod=req_method
            ),
        )
        self.client = vod_client.VodClient(
            Credential(key["SecretId"], key["SecretKey"]), "", profile
        )

    def __call__(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        from tencentcloud.vod.v20180717 import models

        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(params or {}))
        response = getattr(self.client, action)(request)
        return dict(json.loads(response.to_json_string()))

    def call_json(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The SDK's ``call_json``: the raw ``Response``, extension fields and all (no model)."""
        return dict(self.client.call_json(action, params or {})["Response"])


def error_code(call: Any) -> str:
    """Run ``call`` and return the Tencent error code it raised (fails if it did not raise)."""
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )

    try:
        call()
    except TencentCloudSDKException as exc:
        return str(exc.code)
    raise AssertionError("the call succeeded")


def wait_for_task(vod: Vod, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = vod("DescribeTaskDetail", {"TaskId": task_id})
        if detail["Status"] in ("FINISH", "ABORTED"):
            return detail
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish: {detail}")


def tc3_post(
    server: Server,
    key: dict[str, Any],
    action: str,
    body: bytes,
    *,
    version: str = "2018-07-17",
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    """A hand-signed TC3 POST, for bodies the SDK would never send (malformed JSON, etc.)."""
    import hashlib
    import hmac
    from datetime import UTC, datetime

    stamp = int(time.time()) if timestamp is None else timestamp
    date = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
    host = server.endpoint
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\nx-tc-action:{action.lower()}\n",
            "content-type;host;x-tc-action",
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/vod/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(stamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )

    def mac(secret: bytes, text: str) -> bytes:
        return hmac.new(secret, text.encode(), hashlib.sha256).digest()

    signing = mac(mac(mac(("TC3" + key["SecretKey"]).encode(), date), "vod"), "tc3_request")
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Authorization": (
            f"TC3-HMAC-SHA256 Credential={key['SecretId']}/{scope}, "
            f"SignedHeaders=content-type;host;x-tc-action, Signature={signature}"
        ),
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Timestamp": str(stamp),
        "X-TC-Version": version,
    }
    return httpx.post(f"{server.url}/", content=body, headers=headers, timeout=10)
