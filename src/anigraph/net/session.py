"""A fetch session: requests sharing one wall-time cap and one pinned connection pool.

Redirects are followed by hand, each target re-checked for shape before any request and for
its address at connect; the byte cap is enforced while streaming; a file is written under a
temporary name beside its destination and renamed only when complete.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Final

import httpcore
import httpx

from anigraph.net import BadUrl, HttpStatus, TooLarge, TooManyRedirects
from anigraph.net.connection import Deadline, PinnedBackend
from anigraph.net.transport import NoCookies, PinnedTransport, mapped
from anigraph.net.urls import check_url

if TYPE_CHECKING:
    from anigraph.net.fetch import Fetcher

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 64 * 1024
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_CONNECTIONS: Final = 4
"""Connections one session keeps (HLS reuses them across segments of one origin)."""


@dataclass(frozen=True)
class FetchResult:
    """A body saved to ``path``: the final URL (after redirects), its status and type."""

    url_final: str
    status: int
    content_type: str
    size: int
    path: Path


@dataclass(frozen=True)
class Fetched:
    """A small body held in memory (a playlist), with the final URL it came from."""

    url_final: str
    status: int
    content_type: str
    body: bytes


class FetchSession:
    """Several requests sharing one wall-time cap and one pinned connection pool.

    Made by :meth:`Fetcher.session`; close it (``with``). HLS uses one session for the playlist
    and all its segments, so the cap is for the whole download and connections are reused.
    Not thread-safe: one session per thread.
    """

    def __init__(self, fetcher: Fetcher, timeout_seconds: float) -> None:
        self._fetcher = fetcher
        self._deadline = Deadline(timeout_seconds)
        backend = PinnedBackend(fetcher.policy, fetcher.allowed_ports, self._deadline)
        pool = httpcore.ConnectionPool(
            ssl_context=fetcher.ssl_context,
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_CONNECTIONS,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )
        self._client = httpx.Client(
            transport=PinnedTransport(pool),
            trust_env=False,
            follow_redirects=False,
            cookies=http.cookiejar.CookieJar(policy=NoCookies()),
            timeout=httpx.Timeout(
                connect=fetcher.connect_timeout,
                read=fetcher.read_timeout,
                write=fetcher.read_timeout,
                pool=fetcher.connect_timeout,
            ),
            headers={
                "User-Agent": fetcher.user_agent,
                "Accept": "*/*",
                "Accept-Encoding": "identity",
            },
        )

    def __enter__(self) -> FetchSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def max_bytes(self) -> int:
        """The fetcher's byte cap, the default of each download."""
        return self._fetcher.max_bytes

    @property
    def seconds_left(self) -> float:
        return max(self._deadline.at - time.monotonic(), 0.0)

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        return check_url(url, self._fetcher.policy, self._fetcher.allowed_ports)

    def _send(self, request: httpx.Request) -> httpx.Response:
        self._deadline.check()
        with mapped(self._deadline, request.url, self._fetcher.read_timeout):
            return self._client.send(request, stream=True)

    def download(
        self, url: str | httpx.URL, sink: Callable[[bytes], object], max_bytes: int | None = None
    ) -> Fetched:
        """GET ``url`` following redirects; pass the body to ``sink`` chunk by chunk.

        Returns the final URL, status and type (``body`` empty). Raises :class:`TooLarge`
        past ``max_bytes`` (default: the fetcher's), :class:`HttpStatus` for a final non-2xx.
        """
        cap = self._fetcher.max_bytes if max_bytes is None else max_bytes
        current = self.check_url(url)
        for redirects in range(self._fetcher.max_redirects + 1):
            response = self._send(self._client.build_request("GET", current))
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    if redirects >= self._fetcher.max_redirects:
                        raise TooManyRedirects(
                            f"more than {self._fetcher.max_redirects} redirects from {url}"
                        )
                    try:
                        target = current.join(location)
                    except (httpx.InvalidURL, ValueError) as exc:
                        raise BadUrl(f"redirect to an invalid URL: {exc}") from None
                    current = self.check_url(target)
                    log.debug("redirect %d to %s", response.status_code, current)
                    continue
                if not 200 <= response.status_code < 300:
                    raise HttpStatus(response.status_code, str(current))
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise TooLarge(f"{current.host}: {declared} bytes declared, cap {cap}")
                size = 0
                chunks = response.iter_bytes(CHUNK_BYTES)
                while True:
                    # Only the network is mapped: a local failure in ``sink`` (disk full)
                    # must not pass for an unreachable server.
                    with mapped(self._deadline, current, self._fetcher.read_timeout):
                        chunk = next(chunks, None)
                    if chunk is None:
                        break
                    size += len(chunk)
                    if size > cap:
                        raise TooLarge(f"{current.host}: more than {cap} bytes")
                    self._deadline.check()
                    sink(chunk)
                return Fetched(
                    url_final=str(current),
                    status=response.status_code,
                    content_type=response.headers.get("content-type", ""),
                    body=b"",
                )
            finally:
                response.close()
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def fetch_bytes(self, url: str | httpx.URL, max_bytes: int) -> Fetched:
        """A small body (a playlist) in memory; :class:`TooLarge` past ``max_bytes``."""
        parts: list[bytes] = []
        result = self.download(url, parts.append, max_bytes)
        return Fetched(result.url_final, result.status, result.content_type, b"".join(parts))

    def fetch_into(self, url: str | httpx.URL, out: BinaryIO, max_bytes: int | None = None) -> int:
        """Append the body to an open file; the number of bytes written."""
        written = 0

        def sink(chunk: bytes) -> None:
            nonlocal written
            out.write(chunk)
            written += len(chunk)

        self.download(url, sink, max_bytes)
        return written

    def fetch_to_file(
        self, url: str | httpx.URL, dest: str | os.PathLike[str], max_bytes: int | None = None
    ) -> FetchResult:
        """GET ``url`` into ``dest`` atomically (temp file beside it, then rename).

        On any failure nothing is left behind: not ``dest``, not the temp file.
        """
        checked = self.check_url(url)  # a bad URL creates no file at all
        target = Path(dest)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            with temp.open("xb") as out:
                result = self.download(checked, out.write, max_bytes)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return FetchResult(result.url_final, result.status, result.content_type, size, target)

    def post_json(
        self, url: str | httpx.URL, body: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """POST ``body``; ``(status, first bytes of the answer)``, whatever the status.

        Redirects are not followed (a 3xx comes back as the status, for the caller to count as
        a failed delivery); at most the fetcher's ``max_bytes`` of the answer are read.
        """
        target = self.check_url(url)
        merged = {"Content-Type": "application/json"}
        merged.update(headers or {})
        request = self._client.build_request("POST", target, content=body, headers=merged)
        response = self._send(request)
        try:
            cap = self._fetcher.max_bytes
            prefix = bytearray()
            with mapped(self._deadline, target, self._fetcher.read_timeout):
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    prefix += chunk[: cap - len(prefix)]
                    if len(prefix) >= cap:
                        break
            return response.status_code, bytes(prefix)
        finally:
            response.close()
