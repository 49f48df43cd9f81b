"""Loopback HTTP servers, a fake DNS and a connect() spy for the SSRF tests of ``anigraph.net``.

Linux routes all of 127.0.0.0/8 to the loopback interface, so a server bound on 127.0.0.2
plays the "public" host that a test allow-lists, while the canary on 127.0.0.1 (and ::1) plays
the internal service an attacker wants to reach: its connection counter must stay at zero.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Route = Callable[["Handler"], None]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Handler(BaseHTTPRequestHandler):
    """Looks the path up in its :class:`Site`: a static file, a route, or 404."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        site = self.server.site
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        with site.lock:
            site.requests.append(
                Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
        if path in site.routes:
            site.routes[path](self)
        elif path in site.files:
            content, content_type = site.files[path]
            self.send_body(content, content_type)
        else:
            self.send_body(b"not found", "text/plain", status=404)

    do_GET = _serve
    do_POST = _serve

    def send_body(
        self, body: bytes, content_type: str = "application/octet-stream", *, status: int = 200
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, site: Site, address: tuple[str, int]) -> None:
        self.site = site
        super().__init__(address, Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Every accepted TCP connection counts, even one that never sends a request.
        with self.site.lock:
            self.site.connections += 1
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-body (caps, timeouts) are expected here


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass
class Site:
    """A loopback HTTP server with static files, routes and a record of what reached it."""

    host: str = "127.0.0.2"
    port: int = 0
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls: ssl.SSLContext | None = None
    _server: _Server | None = None

    def start(self) -> Site:
        kind = _Server6 if ":" in self.host else _Server
        self._server = kind(self, (self.host, self.port))
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def url(self, path: str = "/", host: str | None = None, scheme: str = "http") -> str:
        name = host or self.host
        if ":" in name:
            name = f"[{name}]"
        return f"{scheme}://{name}:{self.port}{path}"

    def route(self, path: str) -> Callable[[Route], Route]:
        def register(function: Route) -> Route:
            self.routes[path] = function
            return function

        return register

    @property
    def hits(self) -> int:
        """Accepted TCP connections (a request needs one, so this bounds requests too)."""
        return self.connections


@contextmanager
def running(site: Site) -> Iterator[Site]:
    site.start()
    try:
        yield site
    finally:
        site.stop()


@dataclass
class Canary:
    """Listeners on 127.0.0.1 and (when possible) ::1, on one port: the internal service."""

    sites: list[Site]

    @property
    def port(self) -> int:
        return self.sites[0].port

    @property
    def hits(self) -> int:
        return sum(site.hits for site in self.sites)

    @property
    def has_ipv6(self) -> bool:
        return len(self.sites) > 1


def start_canary() -> Canary:
    first = Site("127.0.0.1").start()
    first.files["/"] = (b"secret", "text/plain")
    sites = [first]
    try:
        second = Site("::1", first.port).start()
        sites.append(second)
    except OSError:
        pass
    return Canary(sites)


def stop_canary(canary: Canary) -> None:
    for site in canary.sites:
        site.stop()


# -- fake DNS ---------------------------------------------------------------------------------


Answer = list[str] | Callable[[int], list[str]]
"""Addresses for a name: fixed, or a function of how many times it was asked before."""


class FakeDns:
    """``socket.getaddrinfo`` answering chosen names; others go to the real resolver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, Answer] = {}
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def __setitem__(self, name: str, answer: Answer) -> None:
        self.answers[name] = answer

    def count(self, name: str) -> int:
        return self.lookups.count(name)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(name)
        if name not in self.answers:
            return self._real(host, port, *args, **kwargs)
        answer = self.answers[name]
        addresses = answer(self.count(name) - 1) if callable(answer) else answer
        result: list[Any] = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if ip.version == 4:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))))
            else:
                result.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))
                )
        return result


class ConnectSpy:
    """Every ``connect()`` made by a client socket during a test (address, port)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, int]] = []
        real = socket.socket.connect
        spy = self

        def connect(sock: socket.socket, address: Any) -> None:
            spy.calls.append((str(address[0]), int(address[1])))
            real(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)


def drip(handler: Handler, *, total: int = 1000, interval: float = 0.2) -> None:
    """Declare ``total`` bytes, then send one every ``interval`` seconds."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(total))
    handler.end_headers()
    for _ in range(total):
        try:
            handler.wfile.write(b"x")
            handler.wfile.flush()
        except OSError:
            return
        time.sleep(interval)


def endless_chunked(handler: Handler, *, limit: int = 64 * 1024 * 1024) -> None:
    """A chunked body that never ends (up to ``limit`` bytes, as a safety net for the test)."""
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"z" * 65536
    sent = 0
    while sent < limit:
        try:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            return
        sent += len(chunk)
