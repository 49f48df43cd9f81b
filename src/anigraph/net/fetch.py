"""The SSRF-safe HTTP client for user-given URLs (media pulls, HLS segments, event callbacks).

Why each rule exists (reliability guide 3.3 and the 5.5 table):

- **http/https only, no userinfo, allowed ports only** (80, 443, 8080 unless configured): the
  other schemes (``file``, ``gopher``, ``dict``) and ports (Redis on 6379, SSH on 22) are how
  an SSRF reaches things that are not web servers. An address the operator allow-listed
  (``allow_private_networks``) may be reached on any port: that is the operator's decision,
  and it is how tests and LAN deployments reach servers on arbitrary ports.
- **We resolve the host ourselves, check every answer, and connect to the address we checked.**
  The connection is opened by a custom ``httpcore`` network backend (:class:`_PinnedBackend`)
  that httpx calls whenever it needs a new connection, so each redirect hop to a new origin is
  resolved and checked again, and nothing (no second DNS lookup, no environment proxy) sits
  between the check and the ``connect()``: DNS rebinding cannot pass. One blocked answer
  refuses the whole host, because which answer a retry would use is not ours to predict. The
  peer address of the connected socket is verified once more. TLS still verifies the
  certificate for the URL's hostname (SNI and ``Host`` keep the name; only the socket is pinned).
- **Redirects are followed by hand** (at most ``max_redirects``), each target re-checked for
  scheme, credentials and port before any request, and for its address at connect. A POST
  (callback) never follows a redirect: the caller sees the 3xx as a failed delivery.
- **Caps**: the byte cap is enforced while streaming (a declared ``Content-Length`` over the
  cap fails before the body is read), and the partial file is deleted; the wall-time cap
  bounds DNS, connect, TLS and every read (each socket timeout is clamped to the time left).
- **Nothing from the environment**: ``trust_env=False`` (no ``HTTP_PROXY``, no ``.netrc``, no
  ``SSL_CERT_FILE``), a cookie jar that accepts nothing, no auth. ``Accept-Encoding: identity``
  so media arrives as stored (a compressed answer is still decoded and capped after decoding).
- Files are written atomically: a temporary name beside the destination, then ``os.replace``.

Only public ``httpx``/``httpcore`` API is used (``httpx.BaseTransport``,
``httpcore.ConnectionPool(network_backend=…)``, ``httpcore.NetworkBackend``/``NetworkStream``).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import ipaddress
import logging
import os
import re
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final

import httpcore
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
    Unreachable,
    Unsupported,
)
from anigraph.net.addresses import AddressPolicy, IPAddress

__all__ = [
    "DEFAULT_ALLOWED_PORTS",
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
    "Unreachable",
    "Unsupported",
]

log = logging.getLogger(__name__)

DEFAULT_ALLOWED_PORTS: Final = frozenset({80, 443, 8080})
"""Ports a fetch or callback may use unless configured otherwise (or the address is allowed)."""
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
DEFAULT_MAX_BYTES: Final = 2 * 1024**3
MAX_URL_LENGTH: Final = 8192
CHUNK_BYTES: Final = 64 * 1024
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_CONNECTIONS: Final = 4
"""Connections one session keeps (HLS reuses them across segments of one origin)."""

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")


# -- results ------------------------------------------------------------------------------------


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


# -- URL shape ----------------------------------------------------------------------------------


def _host_address(host: str) -> IPAddress | None:
    """The IP address a URL host names literally (IPv6 without brackets), else ``None``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _check_hostname(host: str) -> None:
    """A DNS name we are willing to resolve: plain LDH labels, not ending in a number.

    A last label that is a number (``2130706433``, ``0x7f.1``, ``127.1``, ``127.0.0.1.``) is
    read as an IPv4 address by browsers and ``inet_aton`` but as a name by others; such a host
    means different things to different parsers, so it is refused outright (WHATWG URL's
    "ends in a number" rule).
    """
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        raise BadUrl(f"the host name {host!r} is not valid")
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise BadUrl(f"the host {host!r} is numeric but not a dotted IPv4 address")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise BadUrl(f"the host name {host!r} is not valid")


def check_url(
    url: str | httpx.URL,
    policy: AddressPolicy,
    allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS,
) -> httpx.URL:
    """The URL parsed once (by httpx, the library that will connect) and checked for shape.

    Raises :class:`BadUrl` (scheme, credentials, host, port number), :class:`BlockedPort`
    (a port outside ``allowed_ports`` that no allow-listed address could justify) or
    :class:`BlockedAddress` (a literal IP the policy refuses). Host names are resolved and
    checked only when connecting.
    """
    if isinstance(url, str):
        if len(url) > MAX_URL_LENGTH:
            raise BadUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
            raise BadUrl("the URL contains spaces or control characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise BadUrl(f"not a valid URL: {exc}") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise BadUrl(f"the scheme {parsed.scheme or '(none)'!r} is not allowed (http, https)")
    if parsed.userinfo:
        raise BadUrl("credentials in the URL are not allowed")
    try:
        host = parsed.raw_host.decode("ascii").lower()
    except UnicodeDecodeError:
        raise BadUrl("the host is not valid") from None
    if not host:
        raise BadUrl("the URL has no host")
    if "%" in host:
        raise BadUrl("zone indexes and escapes in the host are not allowed")
    literal = _host_address(host)
    if literal is None:
        _check_hostname(host)
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
    if not 0 < port < 65536:
        raise BadUrl(f"the port {port} is not valid")
    if literal is not None:
        policy.check(literal)
    if port not in allowed_ports and (
        (literal is None and not policy.allow)
        or (literal is not None and not policy.explicitly_allowed(literal))
    ):
        raise BlockedPort(f"the port {port} is not allowed ({_ports(allowed_ports)})")
    return parsed.copy_with(fragment=None)


def _ports(ports: Iterable[int]) -> str:
    return "allowed: " + ", ".join(str(p) for p in sorted(ports))


# -- time ---------------------------------------------------------------------------------------


class _Deadline:
    """The wall-time cap of one session: every blocking call gets at most the time left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def error(self) -> TimedOut:
        return TimedOut(f"the fetch took longer than {self.seconds:g} s")

    def check(self) -> None:
        if self.expired:
            raise self.error()

    def budget(self, timeout: float | None) -> float:
        """``timeout`` clamped to the time left; :class:`TimedOut` if none is left."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.error()
        return left if timeout is None else max(min(timeout, left), 0.001)


# -- the pinned network backend -----------------------------------------------------------------


def _resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """Every address ``host`` resolves to, within ``timeout`` (``getaddrinfo`` has none).

    The lookup runs in a daemon thread so a hung resolver costs the wall-time cap, not the
    worker; a late answer is simply dropped.
    """
    answers: list[Any] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answers.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # reported to the waiting thread
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="anigraph-dns", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout:.1f} s")
    if errors:
        raise httpcore.ConnectError(f"cannot resolve {host}: {errors[0]}")
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"{host} has no address")
    return addresses


def _readable(sock: socket.socket) -> bool:
    """The connection has data or EOF waiting: an idle pooled connection the server closed."""
    if sock.fileno() == -1:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)


class _Stream(httpcore.NetworkStream):
    """A TCP (or TLS) socket whose every timeout is clamped to the session's deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._sock.settimeout(self._deadline.budget(timeout))
        try:
            return self._sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "read timed out") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            while buffer:
                self._sock.settimeout(self._deadline.budget(timeout))
                sent = self._sock.send(buffer)
                buffer = buffer[sent:]
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "write timed out") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        try:
            self._sock.settimeout(self._deadline.budget(timeout))
            tls = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise BadCertificate(
                f"TLS certificate of {server_hostname} not accepted: {exc.verify_message}"
            ) from exc
        except TimeoutError as exc:
            self.close()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except OSError as exc:
            self.close()
            raise httpcore.ConnectError(f"TLS handshake failed: {exc}") from exc
        except BaseException:
            self.close()
            raise
        return _Stream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock._sslobj  # type: ignore[attr-defined]  # what httpcore reads
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _readable(self._sock)
        return None


class _PinnedBackend(httpcore.NetworkBackend):
    """Opens every connection httpx asks for: resolve, check all answers, connect to them.

    This is the only place a socket is connected, so the address checked is the address
    connected to, at connect time, for every origin and every redirect hop.
    """

    def __init__(
        self, policy: AddressPolicy, allowed_ports: frozenset[int], deadline: _Deadline
    ) -> None:
        self._policy = policy
        self._allowed_ports = allowed_ports
        self._deadline = deadline

    def vet(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        """The addresses ``host:port`` may be reached at; :class:`BlockedAddress` if any may not."""
        literal = _host_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            _check_hostname(host)
            addresses = _resolve(host, port, self._deadline.budget(timeout))
        for address in addresses:
            self._policy.check(address)
            if port not in self._allowed_ports and not self._policy.explicitly_allowed(address):
                raise BlockedPort(
                    f"the port {port} is not allowed for {host} ({_ports(self._allowed_ports)})"
                )
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.vet(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                sock = self._connect(address, port, timeout, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            log.debug("connected to %s (%s) port %d", host, address, port)
            return _Stream(sock, self._deadline)
        assert failure is not None
        raise failure

    def _connect(
        self,
        address: IPAddress,
        port: int,
        timeout: float | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> socket.socket:
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._deadline.budget(timeout))
            # A numeric (address, port) pair: connect() does no name lookup of its own.
            sock.connect((str(address), port))
            peer = ipaddress.ip_address(str(sock.getpeername()[0]))
            if peer != address:  # cannot happen with a numeric connect; refuse if it does
                raise BlockedAddress(f"connected to {peer}, not the checked {address}")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(f"connecting to {address} port {port} timed out") from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(f"cannot connect to {address} port {port}: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        return sock

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedAddress("unix sockets are never used for outgoing requests")

    def sleep(self, seconds: float) -> None:
        time.sleep(self._deadline.budget(seconds))


# -- the httpx transport over the pinned pool ---------------------------------------------------


class _CoreStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _PinnedTransport(httpx.BaseTransport):
    """httpx's transport contract over an ``httpcore`` pool that uses :class:`_PinnedBackend`.

    httpcore exceptions are left as they are; :func:`_mapped` turns them into FetchErrors.
    """

    def __init__(self, pool: httpcore.ConnectionPool) -> None:
        self._pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("only synchronous request bodies are supported")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        response = self._pool.handle_request(core_request)
        if not isinstance(response.stream, Iterable):
            raise TypeError("httpcore returned an asynchronous stream")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_CoreStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Accept no cookie and return none: one fetch must not carry state into another."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


@contextlib.contextmanager
def _mapped(deadline: _Deadline, url: httpx.URL) -> Iterator[None]:
    """httpx/httpcore/socket failures as typed :class:`FetchError` values."""
    try:
        yield
    except FetchError:
        raise
    except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
        if deadline.expired:
            raise deadline.error() from exc
        raise TimedOut(f"{url.host}: timed out ({exc})") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol) as exc:
        raise BadUrl(f"{url}: {exc}") from exc
    except httpx.DecodingError as exc:
        raise Unsupported(f"{url.host}: the response could not be decoded ({exc})") from exc
    except (httpx.TransportError, httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        raise Unreachable(f"{url.host}: {exc}") from exc


# -- sessions -----------------------------------------------------------------------------------


class FetchSession:
    """Several requests sharing one wall-time cap and one pinned connection pool.

    Made by :meth:`Fetcher.session`; close it (``with``). HLS uses one session for the playlist
    and all its segments, so the cap is for the whole download and connections are reused.
    Not thread-safe: one session per thread.
    """

    def __init__(self, fetcher: Fetcher, timeout_seconds: float) -> None:
        self._fetcher = fetcher
        self._deadline = _Deadline(timeout_seconds)
        backend = _PinnedBackend(fetcher.policy, fetcher.allowed_ports, self._deadline)
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
            transport=_PinnedTransport(pool),
            trust_env=False,
            follow_redirects=False,
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
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
    def seconds_left(self) -> float:
        return max(self._deadline.at - time.monotonic(), 0.0)

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        return check_url(url, self._fetcher.policy, self._fetcher.allowed_ports)

    def _send(self, request: httpx.Request) -> httpx.Response:
        self._deadline.check()
        with _mapped(self._deadline, request.url):
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
                    with _mapped(self._deadline, current):
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
            with _mapped(self._deadline, target):
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    prefix += chunk[: cap - len(prefix)]
                    if len(prefix) >= cap:
                        break
            return response.status_code, bytes(prefix)
        finally:
            response.close()


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
        deadline = _Deadline(self.connect_timeout)
        backend = _PinnedBackend(self.policy, self.allowed_ports, deadline)
        with _mapped(deadline, parsed):
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
