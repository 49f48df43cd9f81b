"""Which IP addresses outgoing requests may reach: globally routable unicast only.

A user-given URL must not make the service talk to itself, its LAN, a cloud metadata endpoint
or anything else an outsider cannot reach directly (SSRF). ``ipaddress``'s ``is_global`` is not
enough on its own: in Python 3.11 it calls ``224.0.0.1``, ``2002:7f00:1::`` (6to4 of
127.0.0.1), ``64:ff9b::7f00:1`` (NAT64 of 127.0.0.1) and ``fec0::1`` global. So the rules here
are explicit range lists (IANA special-purpose registries) *and* ``is_global``, and IPv6 forms
that carry an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo, ISATAP) are judged by the
IPv4 address inside, with the same rules — the way imgproxy's ``privatenet`` does.

Operators (and tests) open named ranges with ``allow`` (the ``allow_private_networks``
setting); an allowed range is trusted fully, on any port (see :class:`~anigraph.net.fetch.Fetcher`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

from anigraph.net import BlockedAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = [
    "AddressPolicy",
    "BlockedAddress",
    "IPAddress",
    "IPNetwork",
    "blocked_reason",
    "embedded_ipv4",
    "parse_networks",
]


def _nets4(*pairs: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network, str], ...]:
    return tuple((ipaddress.IPv4Network(cidr), why) for cidr, why in pairs)


def _nets6(*pairs: tuple[str, str]) -> tuple[tuple[ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.IPv6Network(cidr), why) for cidr, why in pairs)


# IANA IPv4 special-purpose registry, plus multicast and the reserved class E.
BLOCKED_V4: Final = _nets4(
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("10.0.0.0/8", "private (10/8)"),
    ("100.64.0.0/10", "shared address space / CGNAT (100.64/10)"),
    ("127.0.0.0/8", "loopback (127/8)"),
    ("169.254.0.0/16", "link-local / cloud metadata (169.254/16)"),
    ("172.16.0.0/12", "private (172.16/12)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0/24)"),
    ("192.0.2.0/24", "documentation (192.0.2/24)"),
    ("192.88.99.0/24", "6to4 relay anycast (192.88.99/24)"),
    ("192.168.0.0/16", "private (192.168/16)"),
    ("198.18.0.0/15", "benchmarking (198.18/15)"),
    ("198.51.100.0/24", "documentation (198.51.100/24)"),
    ("203.0.113.0/24", "documentation (203.0.113/24)"),
    ("224.0.0.0/4", "multicast (224/4)"),
    ("240.0.0.0/4", "reserved / broadcast (240/4)"),
)

# IPv6 ranges refused outright. Forms that embed IPv4 are unwrapped before this list is used.
BLOCKED_V6: Final = _nets6(
    ("::/128", "unspecified (::)"),
    ("::1/128", "loopback (::1)"),
    ("100::/64", "discard-only (100::/64)"),
    ("2001::/23", "IETF protocol assignments (2001::/23)"),
    ("2001:db8::/32", "documentation (2001:db8::/32)"),
    ("3fff::/20", "documentation (3fff::/20)"),
    ("5f00::/16", "SRv6 SIDs (5f00::/16)"),
    ("fc00::/7", "unique-local (fc00::/7)"),
    ("fe80::/10", "link-local (fe80::/10)"),
    ("fec0::/10", "site-local (fec0::/10)"),
    ("ff00::/8", "multicast (ff00::/8)"),
)

# Global unicast space; everything outside it (once the IPv4-carrying forms are handled) is
# reserved or special and never a legitimate media host.
GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")

IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")
NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
TEREDO: Final = ipaddress.IPv6Network("2001::/32")
# ISATAP interface identifiers: 0000:5efe or 0200:5efe (u/g bits may be set) then the IPv4.
ISATAP_IDS: Final = frozenset({0x00005EFE, 0x01005EFE, 0x02005EFE, 0x03005EFE})


def _bits(value: int, first: int, last: int) -> int:
    """Bits ``first``..``last`` (inclusive, 0 = most significant) of a 128-bit value."""
    return (value >> (127 - last)) & ((1 << (last - first + 1)) - 1)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of its form.

    A packet to such an address ends up at (or is relayed towards) that IPv4 host, so the IPv4
    host is what must be judged. Teredo yields the server and the (de-obfuscated, bitwise NOT)
    client. For NAT64 the IPv4 address is taken from the last 32 bits (the /96 layout).
    """
    value = int(ip)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in IPV4_MAPPED:
        return [(low32, "IPv4-mapped")]
    if ip in IPV4_COMPATIBLE:
        return [(low32, "IPv4-compatible")]
    if ip in NAT64_WELL_KNOWN or ip in NAT64_LOCAL_USE:
        return [(low32, "NAT64")]
    if ip in SIX_TO_FOUR:
        return [(ipaddress.IPv4Address(_bits(value, 16, 47)), "6to4")]
    if ip in TEREDO:
        server = ipaddress.IPv4Address(_bits(value, 32, 63))
        client = ipaddress.IPv4Address(~value & 0xFFFFFFFF)
        return [(server, "Teredo server"), (client, "Teredo client")]
    if _bits(value, 64, 95) in ISATAP_IDS:
        return [(low32, "ISATAP")]
    return []


def _translated(carried: list[tuple[ipaddress.IPv4Address, str]]) -> bool:
    """The form *is* a way of reaching the IPv4 host (not ISATAP, whose prefix routes too)."""
    return bool(carried) and carried[0][1] != "ISATAP"


def _reason_v4(ip: ipaddress.IPv4Address) -> str | None:
    for network, why in BLOCKED_V4:
        if ip in network:
            return why
    if not ip.is_global:
        return "not globally routable"
    return None


def _reason_v6_own(ip: ipaddress.IPv6Address) -> str | None:
    for network, why in BLOCKED_V6:
        if ip in network:
            return why
    if ip not in GLOBAL_UNICAST_V6:
        return "outside global unicast (2000::/3)"
    if not ip.is_global:
        return "not globally routable"
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be reached (ignoring any allow-list), or ``None`` if it may be."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _reason_v4(ip)
    if ip.scope_id:
        return "IPv6 with a zone index (link-scoped)"
    carried = embedded_ipv4(ip)
    for inner, form in carried:
        why = _reason_v4(inner)
        if why is not None:
            return f"{form} form of {inner}, {why}"
    if ip in NAT64_LOCAL_USE:
        # RFC 8215: a prefix for one operator's own network, possibly subdivided with other
        # RFC 6052 layouts than /96, so the IPv4 host cannot be known from outside.
        return "local-use NAT64 (64:ff9b:1::/48); allow-list the IPv4 range if intended"
    # The translation forms route to the IPv4 host; judging it was the whole question.
    if _translated(carried):
        return None
    return _reason_v6_own(ip)


def parse_networks(text: str) -> list[IPNetwork]:
    """Comma-separated CIDRs (the ``allow_private_networks`` setting) as networks.

    Host bits are tolerated (``127.0.0.1/8`` means ``127.0.0.0/8``); a malformed entry raises
    ``ValueError`` naming it, so a typo fails at start-up rather than silently allowing nothing.
    """
    networks: list[IPNetwork] = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network: {entry!r} ({exc})") from None
    return networks


class AddressPolicy:
    """The SSRF address rule: globally routable unicast, plus the operator's ``allow`` ranges.

    Stateless after construction and safe to share between threads.
    """

    def __init__(self, allow: Iterable[IPNetwork] = ()) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(allow)

    def __repr__(self) -> str:
        return f"AddressPolicy(allow={[str(n) for n in self.allow]!r})"

    @staticmethod
    def _address(ip: IPAddress | str) -> IPAddress:
        if isinstance(ip, str):
            try:
                return ipaddress.ip_address(ip)
            except ValueError:
                raise BlockedAddress(f"{ip!r} is not an IP address") from None
        return ip

    def explicitly_allowed(self, ip: IPAddress | str) -> bool:
        """``ip``, or every IPv4 address an IPv6 translation form carries, is in ``allow``.

        So allowing ``127.0.0.1/32`` also allows ``::ffff:127.0.0.1``, the same host. An
        allow-listed address is the operator's own decision, reachable on any port.
        """
        address = self._address(ip)
        if self._in_allow(address):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            carried = embedded_ipv4(address)
            if _translated(carried):
                return all(self._in_allow(inner) for inner, _ in carried)
        return False

    def _in_allow(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allow)

    def check(self, ip: IPAddress | str) -> None:
        """Return if ``ip`` may be reached; raise :class:`BlockedAddress` saying why not."""
        address = self._address(ip)
        if self.explicitly_allowed(address):
            return
        why = blocked_reason(address)
        if why is not None:
            raise BlockedAddress(f"address {address} is not allowed: {why}")

    def allows(self, ip: IPAddress | str) -> bool:
        """:meth:`check` as a boolean."""
        try:
            self.check(ip)
        except BlockedAddress:
            return False
        return True
