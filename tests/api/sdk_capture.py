"""A loopback HTTP server that records what the official Tencent SDK sends (used by conftest)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_ID = "AKIDanigraphTest0001"
SECRET_KEY = "k3y/with+odd=chars"
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass(frozen=True)
class Captured:
    """One request as it arrived on the wire."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.records: list[Captured] = []
        self.lock = threading.Lock()


class _Recorder(BaseHTTPRequestHandler):
    server: RecordingServer

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        with self.server.lock:
            self.server.records.append(
                Captured(self.command, path, query, dict(self.headers.items()), body)
            )
        answer = b'{"Response":{"RequestId":"x","Definition":1,"TaskId":"t"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = _handle
    do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


SdkCall = Callable[..., Captured]
