"""httpx over the pinned connection pool, with nothing from the environment.

``trust_env=False`` on the client (no ``HTTP_PROXY``, no ``.netrc``, no ``SSL_CERT_FILE``), a
cookie jar that accepts nothing, and failures of httpx, httpcore and sockets mapped to typed
:class:`~anigraph.net.FetchError` values. Only public ``httpx``/``httpcore`` API is used
(``httpx.BaseTransport``, ``httpcore.ConnectionPool(network_backend=…)``).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from anigraph.net import BadUrl, FetchError, TimedOut, TooSlow, Unreachable, Unsupported
from anigraph.net.connection import Deadline


class CoreStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PinnedTransport(httpx.BaseTransport):
    """httpx's transport contract over an ``httpcore`` pool that uses :class:`PinnedBackend`.

    httpcore exceptions are left as they are; :func:`mapped` turns them into FetchErrors.
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
            stream=CoreStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Accept no cookie and return none: one fetch must not carry state into another."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


@contextlib.contextmanager
def mapped(deadline: Deadline, url: httpx.URL, read_timeout: float = 0.0) -> Iterator[None]:
    """httpx/httpcore/socket failures as typed :class:`FetchError` values.

    A read timeout (``read_timeout`` seconds of silence) is the source's slowness, like the
    wall-time cap; only a connect timeout is a timeout worth another attempt.
    """
    try:
        yield
    except FetchError:
        raise
    except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
        if deadline.expired:
            raise deadline.error() from exc
        if isinstance(exc, httpx.ReadTimeout | httpcore.ReadTimeout):
            raise TooSlow(f"{url.host} sent nothing for {read_timeout:g} s") from exc
        raise TimedOut(f"{url.host}: timed out ({exc})") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol) as exc:
        raise BadUrl(f"{url}: {exc}") from exc
    except httpx.DecodingError as exc:
        raise Unsupported(f"{url.host}: the response could not be decoded ({exc})") from exc
    except (httpx.TransportError, httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        raise Unreachable(f"{url.host}: {exc}") from exc
