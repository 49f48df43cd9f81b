"""Outgoing HTTP to user-given URLs (media pulls, HLS, event callbacks), safe against SSRF.

Every URL a user gives us (PullUpload's MediaUrl, ProcessMedia's Url, a NotificationUrl) is
fetched by :class:`anigraph.net.fetch.Fetcher`, never by FFmpeg: it allows http/https on a
few ports, resolves the host itself, refuses the whole request if *any* answer is not a
globally routable address (:mod:`anigraph.net.addresses`), and connects to the address it
checked, so a second DNS answer cannot slip in between check and connect (DNS rebinding).
HLS is downloaded by :mod:`anigraph.net.hls` through the same client, segment by segment.

The error types live here, in the package root, so that the address policy and the client
share them without importing each other. They are values with meaning, not strings: the
caller maps them to Tencent error codes (``DownloadNotAccessible``, ``ContentUnsupported``)
and decides whether another attempt is worth it (``transient``).
"""

from __future__ import annotations

__all__ = [
    "BadCertificate",
    "BadUrl",
    "BlockedAddress",
    "BlockedPort",
    "FetchError",
    "HttpStatus",
    "TimedOut",
    "TooLarge",
    "TooManyRedirects",
    "TooSlow",
    "Unreachable",
    "Unsupported",
]


class FetchError(Exception):
    """A URL could not be fetched; ``str()`` says why in words a user may see.

    ``transient`` tells whether the same request could succeed later (a timeout, a refused
    connection, a 503), as opposed to a request that never will (a blocked address).
    """

    transient: bool = False


class BlockedAddress(FetchError, ValueError):
    """The host is, or resolves to, an address the policy does not let us reach.

    Also a ``ValueError`` so that configuration-time checks (a NotificationUrl being set) can
    treat it like any other invalid value.
    """


class BlockedPort(BlockedAddress):
    """The port is not one outgoing requests may use (and the address is not allow-listed)."""


class BadUrl(FetchError, ValueError):
    """Not a URL we fetch: wrong scheme, credentials in it, no or an ambiguous host, bad port."""


class TooLarge(FetchError):
    """The body is larger than the byte cap (declared or while streaming); nothing was kept."""


class TimedOut(FetchError):
    """A connect timeout ran out: the server may be reachable again later."""

    transient = True


class TooSlow(TimedOut):
    """The source is too slow: the whole fetch passed its wall-time cap (a drip), or the source
    sent nothing for the read timeout (a stall). Not transient: the same source is as slow
    next time, and each attempt would hold a worker for the whole cap."""

    transient = False


class Unreachable(FetchError):
    """No connection or no complete response: refused, reset, DNS failure, protocol error."""

    transient = True


class BadCertificate(FetchError):
    """TLS verification failed. Not transient: a wrong certificate stays wrong."""


class TooManyRedirects(FetchError):
    """More redirects than the cap (or a loop)."""


class Unsupported(FetchError):
    """Fetched, but in a form we refuse to handle (encrypted or fMP4 HLS, byte ranges, …)."""


class HttpStatus(FetchError):
    """The server answered a GET with a status other than 2xx (after redirects)."""

    def __init__(self, status: int, url: str = "") -> None:
        where = f" from {url}" if url else ""
        super().__init__(f"HTTP status {status}{where}")
        self.status = status
        self.url = url
        # Server-side trouble and rate limits may pass; a 404 or 403 will not.
        self.transient = status in (408, 425, 429) or status >= 500
