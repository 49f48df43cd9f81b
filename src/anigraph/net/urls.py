"""The shape of a URL we fetch: http/https, no userinfo, a plain host, an allowed port.

The other schemes (``file``, ``gopher``, ``dict``) and ports (Redis on 6379, SSH on 22) are how
an SSRF reaches things that are not web servers. An address the operator allow-listed
(``allow_private_networks``) may be reached on any port: that is the operator's decision, and
it is how tests and LAN deployments reach servers on arbitrary ports. Host names are resolved
and their addresses checked only when connecting (:mod:`anigraph.net.connection`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final

import httpx

from anigraph.net import BadUrl, BlockedPort
from anigraph.net.addresses import AddressPolicy, IPAddress

DEFAULT_ALLOWED_PORTS: Final = frozenset({80, 443, 8080})
"""Ports a fetch or callback may use unless configured otherwise (or the address is allowed)."""
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
MAX_URL_LENGTH: Final = 8192

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")


def host_address(host: str) -> IPAddress | None:
    """The IP address a URL host names literally (IPv6 without brackets), else ``None``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_hostname(host: str) -> None:
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
    literal = host_address(host)
    if literal is None:
        check_hostname(host)
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
    if not 0 < port < 65536:
        raise BadUrl(f"the port {port} is not valid")
    if literal is not None:
        policy.check(literal)
    if port not in allowed_ports and (
        (literal is None and not policy.allow)
        or (literal is not None and not policy.explicitly_allowed(literal))
    ):
        raise BlockedPort(f"the port {port} is not allowed ({ports_text(allowed_ports)})")
    return parsed.copy_with(fragment=None)


def ports_text(ports: Iterable[int]) -> str:
    return "allowed: " + ", ".join(str(p) for p in sorted(ports))
