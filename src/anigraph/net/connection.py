"""The pinned connection: we resolve the host ourselves, check every answer, and connect to the
address we checked, within the fetch's wall-time cap.

The connection is opened by a custom ``httpcore`` network backend (:class:`PinnedBackend`) that
httpx calls whenever it needs a new connection, so each redirect hop to a new origin is
resolved and checked again, and nothing (no second DNS lookup, no environment proxy) sits
between the check and the ``connect()``: DNS rebinding cannot pass. One blocked answer refuses
the whole host, because which answer a retry would use is not ours to predict. The peer
address of the connected socket is verified once more. TLS still verifies the certificate for
the URL's hostname (SNI and ``Host`` keep the name; only the socket is pinned).

The wall-time cap (:class:`Deadline`) bounds DNS, connect, TLS and every read: each socket
timeout is clamped to the time left. Only public ``httpcore`` API is used
(``httpcore.NetworkBackend``/``NetworkStream``).
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore

from anigraph.net import BadCertificate, BlockedAddress, BlockedPort, TooSlow
from anigraph.net.addresses import AddressPolicy, IPAddress
from anigraph.net.urls import check_hostname, host_address, ports_text

log = logging.getLogger(__name__)


class Deadline:
    """The wall-time cap of one session: every blocking call gets at most the time left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def error(self) -> TooSlow:
        return TooSlow(f"the fetch took longer than {self.seconds:g} s in all")

    def check(self) -> None:
        if self.expired:
            raise self.error()

    def budget(self, timeout: float | None) -> float:
        """``timeout`` clamped to the time left; :class:`TooSlow` if none is left."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.error()
        return left if timeout is None else max(min(timeout, left), 0.001)


# -- the pinned network backend -----------------------------------------------------------------


def resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
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


def readable(sock: socket.socket) -> bool:
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


class Stream(httpcore.NetworkStream):
    """A TCP (or TLS) socket whose every timeout is clamped to the session's deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
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
        return Stream(tls, self._deadline)

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
            return readable(self._sock)
        return None


class PinnedBackend(httpcore.NetworkBackend):
    """Opens every connection httpx asks for: resolve, check all answers, connect to them.

    This is the only place a socket is connected, so the address checked is the address
    connected to, at connect time, for every origin and every redirect hop.
    """

    def __init__(
        self, policy: AddressPolicy, allowed_ports: frozenset[int], deadline: Deadline
    ) -> None:
        self._policy = policy
        self._allowed_ports = allowed_ports
        self._deadline = deadline

    def vet(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        """The addresses ``host:port`` may be reached at; :class:`BlockedAddress` if any may not."""
        literal = host_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            check_hostname(host)
            addresses = resolve(host, port, self._deadline.budget(timeout))
        for address in addresses:
            self._policy.check(address)
            if port not in self._allowed_ports and not self._policy.explicitly_allowed(address):
                raise BlockedPort(
                    f"the port {port} is not allowed for {host} ({ports_text(self._allowed_ports)})"
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
            return Stream(sock, self._deadline)
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
