"""Fixtures: the official Tencent SDK driven against a loopback server that records requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_capture import PROXY_VARIABLES, SECRET_ID, SECRET_KEY, Captured, RecordingServer, SdkCall


@pytest.fixture(scope="module")
def recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sdk_call(recording_server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> SdkCall:
    """``sdk_call(action, params, sign_method=..., req_method=..., ...)`` -> the captured request.

    Drives ``tencentcloud-sdk-python-vod``'s ``VodClient`` against the recording server and
    returns exactly what it put on the wire.
    """
    from tencentcloud.common.credential import Credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.vod.v20180717 import models, vod_client

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    port = recording_server.server_address[1]

    def call(
        action: str,
        params: dict[str, Any],
        *,
        sign_method: str = "TC3-HMAC-SHA256",
        req_method: str = "POST",
        secret_id: str = SECRET_ID,
        secret_key: str = SECRET_KEY,
        token: str | None = None,
        region: str = "",
        language: str = "zh-CN",
        unsigned_payload: bool = False,
        endpoint: str | None = None,
    ) -> Captured:
        credential = Credential(secret_id, secret_key, token)
        profile = ClientProfile(
            signMethod=sign_method,
            httpProfile=HttpProfile(
                endpoint=endpoint or f"127.0.0.1:{port}", protocol="http", reqMethod=req_method
            ),
            language=language,
        )
        profile.unsignedPayload = unsigned_payload
        client = vod_client.VodClient(credential, region, profile)
        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        with recording_server.lock:
            recording_server.records.clear()
        getattr(client, action)(request)
        with recording_server.lock:
            (captured,) = recording_server.records
        return captured

    return call
