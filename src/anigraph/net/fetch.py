"""The SSRF-safe HTTP client for user-given URLs (media pulls, HLS segments, event callbacks).

Why each rule exists (reliability guide 3.3 and the 5.5 table), and where it is enforced:

- **http/https only, no userinfo, allowed ports only** (80, 443, 8080 unless configured), or
  any port of an address the operator allow-listed: :mod:`anigraph.net.urls`.
- **We resolve the host ourselves, check every answer, and connect to the address we checked**,
  at connect time, for every origin and every redirect hop, so DNS rebinding cannot pass:
  :mod:`anigraph.net.connection`.
- **Redirects are followed by hand** (at most ``max_redirects``), each target re-checked; a
  POST (callback) never follows a redirect: the caller sees the 3xx as a failed delivery.
- **Caps**: the byte cap is enforced while streaming (a declared ``Content-Length`` over the
  cap fails before the body is read), and the partial file is deleted; the wall-time cap
  bounds DNS, connect, TLS and every read (each socket timeout is clamped to the time left).
  Both in :mod:`anigraph.net.session`.
- **Nothing from the environment**: no proxy, no ``.netrc``, no cookies kept, no auth
  (:mod:`anigraph.net.transport`). ``Accept-Encoding: identity`` so media arrives as stored
  (a compressed answer is still decoded and capped after decoding).
- Files are written atomically: a temporary name beside the destination, then ``os.replace``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping
from typing import Final

import httpx

from anigraph.net import (
    BadCertificate,
    BadUrl,
    BlockedAddress,
    BlockedPort,
    FetchError,
    HttpStatus,
    TimedOut,
    TooLarge,
    TooManyRedirects,
    TooSlow,
    Unreachable,
    Unsupported,
)
from anigraph.net.addresses import AddressPolicy, IPAddress
from anigraph.net.connection import Deadline, PinnedBackend
from anigraph.net.session import Fetched, FetchResult, FetchSession
from anigraph.net.transport import mapped
from anigraph.net.urls import DEFAULT_ALLOWED_PORTS, DEFAULT_PORTS, check_url

__all__ = [
    "DEFAULT_ALLOWED_PORTS",
    "DEFAULT_PORTS",
    "BadCertificate",
    "BadUrl",
    "BlockedAddress",
    "BlockedPort",
    "FetchError",
    "FetchResult",
    "FetchSession",
    "Fetched",
    "Fetcher",
    "HttpStatus",
    "TimedOut",
    "TooLarge",
    "TooManyRedirects",
    "TooSlow",
    "Unreachable",
    "Unsupported",
    "check_url",
]

DEFAULT_MAX_BYTES: Final = 2 * 1024**3


class Fetcher:
    """SSRF-safe HTTP client: configuration shared by threads, one session per call.

    ``policy`` decides which addresses may be reached; ``allowed_ports`` which ports (any
    port for allow-listed addresses). ``max_bytes`` caps a body; ``timeout_seconds`` is the
    wall time of one call (one whole session for :meth:`session`); ``connect_timeout`` bounds
    DNS plus connect plus TLS; ``read_timeout`` the silence between two reads.
    ``ssl_context`` replaces httpx's default verification (tests: a private CA).
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        allowed_ports: Iterable[int] = DEFAULT_ALLOWED_PORTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout_seconds: float = 600.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_redirects: int = 5,
        user_agent: str = "anigraph",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_bytes < 0 or timeout_seconds <= 0 or connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("caps and timeouts must be positive")
        if max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")
        self.policy = policy
        self.allowed_ports = frozenset(allowed_ports)
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        # Built once (loading the CA bundle is the slow part); SSLContext is thread-safe.
        self.ssl_context = ssl_context or httpx.create_ssl_context(verify=True, trust_env=False)

    def session(self, timeout_seconds: float | None = None) -> FetchSession:
        """A session whose requests share one wall-time cap (default ``timeout_seconds``)."""
        return FetchSession(self, timeout_seconds or self.timeout_seconds)

    def check_url(self, url: str | httpx.URL) -> str:
        """``url`` normalised if its shape is acceptable (see :func:`check_url`); no DNS."""
        return str(check_url(url, self.policy, self.allowed_ports))

    def vet_url(self, url: str | httpx.URL) -> list[IPAddress]:
        """Shape, then resolve the host now and check every address: a submit-time check.

        The connection-time check still happens on every fetch (DNS answers change).
        """
        parsed = check_url(url, self.policy, self.allowed_ports)
        port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
        deadline = Deadline(self.connect_timeout)
        backend = PinnedBackend(self.policy, self.allowed_ports, deadline)
        with mapped(deadline, parsed):
            return backend.vet(parsed.raw_host.decode("ascii").lower(), port, None)

    def fetch_to_file(self, url: str, dest: str | os.PathLike[str]) -> FetchResult:
        """GET ``url`` (redirects followed and re-checked) into ``dest``, atomically."""
        with self.session() as session:
            return session.fetch_to_file(url, dest)

    def fetch_bytes(self, url: str, max_bytes: int) -> Fetched:
        """GET a small body into memory."""
        with self.session() as session:
            return session.fetch_bytes(url, max_bytes)

    def post_json(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """POST a callback: ``(status, answer prefix)``; no redirects; raises FetchError."""
        with self.session() as session:
            return session.post_json(url, body, headers)
