"""The SSRF-safe client (``anigraph.net``): reliability guide 5.5 row by row, caps, HLS.

Real servers on loopback. The *canary* (127.0.0.1 and ::1, one port) is the internal service
an attacker aims at: after every test its connection counter must still be zero. The
"public" server that tests reach is bound on 127.0.0.2 and allow-listed explicitly
(``AddressPolicy(allow=[127.0.0.2/32])``); the table itself runs against the default policy.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

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
from anigraph.net.addresses import AddressPolicy, blocked_reason, embedded_ipv4, parse_networks
from anigraph.net.fetch import DEFAULT_ALLOWED_PORTS, Fetcher, check_url
from anigraph.net.hls import fetch_hls, is_hls, parse_master, parse_media
from media_factory import make_clip
from net_fixtures import (
    Canary,
    ConnectSpy,
    FakeDns,
    Handler,
    Route,
    Site,
    drip,
    endless_chunked,
    running,
    start_canary,
    stop_canary,
)

PUBLIC_STAND_IN = ipaddress.ip_network("127.0.0.2/32")


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    started = start_canary()
    yield started
    stop_canary(started)


@pytest.fixture(autouse=True)
def canary_untouched(canary: Canary) -> Iterator[None]:
    """No test in this module may ever reach the canary, whatever it asserts itself."""
    yield
    assert canary.hits == 0, "a blocked URL reached the loopback canary"


@pytest.fixture
def site() -> Iterator[Site]:
    with running(Site("127.0.0.2")) as started:
        yield started


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    return FakeDns(monkeypatch)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ConnectSpy:
    return ConnectSpy(monkeypatch)


def fetcher(canary: Canary, *allow: str, **options: object) -> Fetcher:
    """A fetcher whose port list includes the canary's, so only the address rule can block."""
    policy = AddressPolicy([ipaddress.ip_network(a) for a in allow])
    ports = DEFAULT_ALLOWED_PORTS | {canary.port}
    return Fetcher(policy, allowed_ports=ports, **options)  # type: ignore[arg-type]


def allowed(canary: Canary, **options: object) -> Fetcher:
    return fetcher(canary, "127.0.0.2/32", **options)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def redirect_to(location: str, status: int = 302) -> Route:
    def route(handler: Handler) -> None:
        handler.redirect(location, status)

    return route


# -- the address policy -------------------------------------------------------------------------

BLOCKED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "192.0.0.8",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",
    "198.19.255.255",
    "192.88.99.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fe80::1",
    "febf::1",
    "fc00::1",
    "fd00:ec2::254",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "3fff::1",
    "100::1",
    "5f00::1",
    "2001:2::1",
    "4000::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "::10.0.0.1",
    "2002:7f00:1::",
    "2002:a00:1::1",
    "2002:a9fe:a9fe::1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::7f00:1",
    "64:ff9b:1::808:808",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "2001:0:a00:1:8000:63bf:f7f7:f7f7",  # Teredo, server 10.0.0.1
    "2a00:1450::5efe:7f00:1",  # ISATAP of 127.0.0.1
    "2a00:1450::200:5efe:a00:1",  # ISATAP (u bit) of 10.0.0.1
]

PUBLIC_ADDRESSES = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:81b::200e",
    "::ffff:8.8.8.8",
    "2002:808:808::1",
    "64:ff9b::808:808",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
]


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
def test_policy_blocks_non_global_addresses(address: str) -> None:
    policy = AddressPolicy()
    ip = ipaddress.ip_address(address)
    assert blocked_reason(ip) is not None
    with pytest.raises(BlockedAddress):
        policy.check(ip)
    with pytest.raises(BlockedAddress):
        policy.check(address)  # strings are accepted too
    assert not policy.allows(ip)


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_policy_allows_global_unicast(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None
    AddressPolicy().check(address)


def test_python_is_global_alone_would_be_bypassed() -> None:
    """Why the explicit lists exist: these pass ``is_global`` on this Python."""
    for address in ("224.0.0.1", "2002:7f00:1::", "64:ff9b::7f00:1", "fec0::1"):
        ip = ipaddress.ip_address(address)
        if ip.is_global:
            assert blocked_reason(ip) is not None


def test_embedded_ipv4_forms_are_unwrapped() -> None:
    v6 = ipaddress.IPv6Address
    v4 = ipaddress.IPv4Address
    assert embedded_ipv4(v6("::ffff:1.2.3.4")) == [(v4("1.2.3.4"), "IPv4-mapped")]
    assert embedded_ipv4(v6("::1.2.3.4")) == [(v4("1.2.3.4"), "IPv4-compatible")]
    assert embedded_ipv4(v6("2002:102:304:5::6")) == [(v4("1.2.3.4"), "6to4")]
    assert embedded_ipv4(v6("64:ff9b::102:304")) == [(v4("1.2.3.4"), "NAT64")]
    assert embedded_ipv4(v6("2001:0:4136:e378:8000:63bf:80ff:fffe")) == [
        (v4("65.54.227.120"), "Teredo server"),
        (v4("127.0.0.1"), "Teredo client"),
    ]
    assert embedded_ipv4(v6("2a00:1450::5efe:102:304")) == [(v4("1.2.3.4"), "ISATAP")]
    assert embedded_ipv4(v6("2606:4700:4700::1111")) == []


def test_allow_list_opens_only_the_named_ranges() -> None:
    policy = AddressPolicy(parse_networks(" 127.0.0.2/32, 10.0.0.0/8 ,fd00::/8,"))
    for ok in ("127.0.0.2", "10.9.8.7", "fd00::5", "::ffff:127.0.0.2", "::ffff:10.1.1.1"):
        policy.check(ok)
        assert policy.explicitly_allowed(ok)
    for blocked in ("127.0.0.1", "192.168.0.1", "::1", "::ffff:127.0.0.1", "169.254.169.254"):
        with pytest.raises(BlockedAddress):
            policy.check(blocked)
    assert not policy.explicitly_allowed("8.8.8.8")  # allowed by the rules, not by the list
    with pytest.raises(ValueError, match="not a network"):
        parse_networks("10.0.0.0/8, nonsense")


# -- the 5.5 table, against the default policy --------------------------------------------------

U1_LOOPBACK = [
    "http://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "http://LOCALHOST:{p}/",
    "http://0.0.0.0:{p}/",
    "http://[::1]:{p}/",
    "http://[::]:{p}/",
    "http://[0:0:0:0:0:0:0:1]:{p}/",
    "http://2130706433:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://0x7f.1:{p}/",
    "http://0x7f000001:{p}/",
    "http://127.1:{p}/",
    "http://127.0.0.1.:{p}/",
    "http://127.0.0.2:{p}/",  # the "public" server is loopback too, without the allow-list
    "http://127.0.0.1/",
    "http://localhost/",
]
U2_PRIVATE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.64.0.1/",
    "http://10.0.0.1/",
    "http://172.16.0.1:8080/",
    "http://192.168.1.1/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://[2001:db8::1]/",
]
U3_EMBEDDED = [
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://[::ffff:7f00:1]:{p}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
    "http://[::127.0.0.1]:{p}/",
    "http://[2002:7f00:1::]:{p}/",
    "http://[2002:7f00:1::1]:{p}/",
    "http://[64:ff9b::7f00:1]:{p}/",
    "http://[64:ff9b::127.0.0.1]:{p}/",
    "http://[64:ff9b:1::7f00:1]:{p}/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/",
    "http://[2a00:1450::5efe:7f00:1]:{p}/",
    "http://[::ffff:169.254.169.254]/",
]
U6_SCHEMES = [
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "gopher://127.0.0.1:{p}/_GET%20/",
    "ftp://127.0.0.1:{p}/",
    "data:text/plain,hello",
    "dict://127.0.0.1:{p}/info",
    "ws://127.0.0.1:{p}/",
    "jar:http://127.0.0.1:{p}/x!/",
    "//127.0.0.1:{p}/",
    "127.0.0.1:{p}",
]
U7_CONFUSION = [
    "http://good@127.0.0.1:{p}/",
    "http://user:pass@127.0.0.2:{p}/",
    "http://good.example@127.0.0.1:{p}/",
    "http://127.0.0.1:{p}#@good.example/",
    "http://127.0.0.1:{p}\\@good.example/",
    "http://ｌｏｃａｌｈｏｓｔ:{p}/",
    "http://127。0。0。1:{p}/",
    "http://127.0.0.1%2f@good.example:{p}/",
    "http://[::1%25lo]:{p}/",
    "http:///127.0.0.1:{p}/",
    "http://127.0.0.1:{p} /",
    "http://127.0.0.1:{p}/\r\nX: y",
]


def _refused(canary: Canary, spy: ConnectSpy, url: str, folder: Path) -> FetchError:
    target = url.format(p=canary.port)
    with pytest.raises(FetchError) as caught:
        fetcher(canary).fetch_to_file(target, folder / "never-written")
    assert spy.calls == [], f"{target} caused a connect(): {spy.calls}"
    assert leftovers(folder) == []
    return caught.value


@pytest.mark.parametrize("url", U1_LOOPBACK)
def test_u1_loopback_forms_are_refused(
    canary: Canary, spy: ConnectSpy, url: str, tmp_path: Path
) -> None:
    error = _refused(canary, spy, url, tmp_path)
    assert isinstance(error, (BlockedAddress, BadUrl)), error


@pytest.mark.parametrize("url", U2_PRIVATE)
def test_u2_private_and_special_ranges_are_refused(
    canary: Canary, spy: ConnectSpy, url: str, tmp_path: Path
) -> None:
    assert isinstance(_refused(canary, spy, url, tmp_path), BlockedAddress)


@pytest.mark.parametrize("url", U3_EMBEDDED)
def test_u3_ipv4_hidden_in_ipv6_is_unwrapped(
    canary: Canary, spy: ConnectSpy, url: str, tmp_path: Path
) -> None:
    error = _refused(canary, spy, url, tmp_path)
    assert isinstance(error, BlockedAddress)
    assert "127.0.0.1" in str(error) or "169.254.169.254" in str(error)


@pytest.mark.parametrize("url", U6_SCHEMES)
def test_u6_other_schemes_are_refused(
    canary: Canary, spy: ConnectSpy, url: str, tmp_path: Path
) -> None:
    assert isinstance(_refused(canary, spy, url, tmp_path), BadUrl)


@pytest.mark.parametrize("url", U7_CONFUSION)
def test_u7_parser_confusion_is_refused(
    canary: Canary, spy: ConnectSpy, url: str, tmp_path: Path
) -> None:
    assert isinstance(_refused(canary, spy, url, tmp_path), (BadUrl, BlockedAddress))


def test_u1_u2_names_resolving_to_internal_addresses(
    canary: Canary, spy: ConnectSpy, dns: FakeDns, tmp_path: Path
) -> None:
    """A public-looking name whose DNS answer is internal (the usual SSRF) is refused."""
    dns["media.evil.example"] = ["127.0.0.1"]
    dns["metadata.evil.example"] = ["169.254.169.254"]
    dns["v6.evil.example"] = ["::1"]
    dns["mapped.evil.example"] = ["::ffff:127.0.0.1"]
    dns["nat64.evil.example"] = ["64:ff9b::7f00:1"]
    for name in dns.answers:
        error = _refused(canary, spy, f"http://{name}:{{p}}/video.mp4", tmp_path)
        assert isinstance(error, BlockedAddress)
        assert dns.count(name) == 1


def test_u4_dns_rebinding_connects_to_the_checked_address_only(
    canary: Canary, spy: ConnectSpy, dns: FakeDns, tmp_path: Path
) -> None:
    """First answer allowed (127.0.0.2, the public stand-in), every later one 127.0.0.1.

    The fetcher looks the name up once, checks that answer, and connects to exactly it; a
    library that looked up again at connect time would land on the canary.
    """
    with running(Site("127.0.0.2", canary.port)) as good:
        good.files["/ok.bin"] = (b"the real content", "application/octet-stream")
        dns["rebind.example"] = lambda asked: ["127.0.0.2"] if asked == 0 else ["127.0.0.1"]
        result = allowed(canary).fetch_to_file(
            f"http://rebind.example:{canary.port}/ok.bin", tmp_path / "out"
        )
        assert result.path.read_bytes() == b"the real content"
        assert dns.count("rebind.example") == 1
        assert spy.calls == [("127.0.0.2", canary.port)]
        assert good.requests[0].headers["host"] == f"rebind.example:{canary.port}"
        # The next fetch asks again, gets the private answer, and is refused before connecting.
        with pytest.raises(BlockedAddress):
            allowed(canary).fetch_to_file(
                f"http://rebind.example:{canary.port}/ok.bin", tmp_path / "again"
            )
        assert spy.calls == [("127.0.0.2", canary.port)]
    assert leftovers(tmp_path) == ["out"]


def test_u4_one_private_answer_refuses_the_whole_host(
    canary: Canary, spy: ConnectSpy, dns: FakeDns, site: Site
) -> None:
    site.files["/ok"] = (b"ok", "text/plain")
    for answers in (["127.0.0.2", "127.0.0.1"], ["127.0.0.1", "127.0.0.2"], ["127.0.0.2", "::1"]):
        dns["mixed.example"] = answers
        with pytest.raises(BlockedAddress):
            allowed(canary).fetch_bytes(f"http://mixed.example:{site.port}/ok", 100)
    assert spy.calls == []
    assert site.hits == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_u5_redirect_to_internal_address_is_refused_at_the_hop(
    canary: Canary, spy: ConnectSpy, site: Site, tmp_path: Path, status: int
) -> None:
    site.routes["/go"] = lambda h: h.redirect(f"http://127.0.0.1:{canary.port}/", status)
    with pytest.raises(BlockedAddress):
        allowed(canary).fetch_to_file(site.url("/go"), tmp_path / "out")
    assert [r.path for r in site.requests] == ["/go"]
    assert {address for address, _ in spy.calls} == {"127.0.0.2"}
    assert leftovers(tmp_path) == []


def test_u5_redirect_targets_are_all_rechecked(
    canary: Canary, spy: ConnectSpy, dns: FakeDns, site: Site, tmp_path: Path
) -> None:
    dns["internal.example"] = ["127.0.0.1"]
    targets = {
        f"http://[::ffff:127.0.0.1]:{canary.port}/": BlockedAddress,
        f"http://[::1]:{canary.port}/": BlockedAddress,
        f"http://internal.example:{canary.port}/": BlockedAddress,
        f"http://localhost:{canary.port}/": BlockedAddress,
        "http://169.254.169.254/latest/meta-data/": BlockedAddress,
        "file:///etc/passwd": BadUrl,
        "gopher://127.0.0.1:70/": BadUrl,
        f"http://user:pw@127.0.0.2:{site.port}/": BadUrl,
        "http://8.8.8.8:6379/": BlockedPort,
    }
    for target, error in targets.items():
        site.routes["/go"] = redirect_to(target)
        with pytest.raises(error):
            allowed(canary).fetch_to_file(site.url("/go"), tmp_path / "out")
    assert {address for address, _ in spy.calls} == {"127.0.0.2"}
    assert leftovers(tmp_path) == []


def test_u5_redirects_are_followed_up_to_the_cap(
    canary: Canary, site: Site, tmp_path: Path
) -> None:
    site.files["/final"] = (b"done", "text/plain")
    for hop in range(5):
        site.routes[f"/r{hop}"] = redirect_to(f"/r{hop + 1}" if hop < 4 else "/final", 301)
    result = allowed(canary).fetch_to_file(site.url("/r0"), tmp_path / "out")
    assert (result.url_final, result.size) == (site.url("/final"), 4)
    site.requests.clear()
    with pytest.raises(TooManyRedirects):
        allowed(canary, max_redirects=4).fetch_to_file(site.url("/r0"), tmp_path / "two")
    assert len(site.requests) == 5
    assert leftovers(tmp_path) == ["out"]


def test_u5_redirect_loop_is_capped(canary: Canary, site: Site, tmp_path: Path) -> None:
    site.routes["/a"] = lambda h: h.redirect("/b", 302)
    site.routes["/b"] = lambda h: h.redirect(site.url("/a"), 307)
    with pytest.raises(TooManyRedirects):
        allowed(canary).fetch_to_file(site.url("/a"), tmp_path / "out")
    assert len(site.requests) == 6  # the first request and five redirects
    assert leftovers(tmp_path) == []


def test_u8_ports_outside_the_list_are_refused(
    canary: Canary, spy: ConnectSpy, dns: FakeDns, tmp_path: Path
) -> None:
    dns["public.example"] = ["93.184.216.34"]
    default = Fetcher(AddressPolicy())
    for url in (
        "http://public.example:6379/",
        "http://public.example:22/",
        "https://public.example:25/",
        "http://93.184.216.34:6379/",
        "http://[2606:4700:4700::1111]:11211/",
    ):
        with pytest.raises(BlockedPort):
            default.fetch_to_file(url, tmp_path / "out")
    assert dns.count("public.example") == 0  # refused before any lookup: nothing could allow it
    # With an allow-list, the decision needs the address: looked up, then refused unconnected.
    with pytest.raises(BlockedPort):
        allowed(canary).fetch_to_file("http://public.example:6379/", tmp_path / "out")
    assert dns.count("public.example") == 1
    assert spy.calls == []
    assert leftovers(tmp_path) == []


def test_u8_allow_listed_addresses_may_use_any_port(site: Site) -> None:
    site.files["/x"] = (b"x", "text/plain")
    plain = Fetcher(AddressPolicy([PUBLIC_STAND_IN]))  # default port list
    assert site.port not in DEFAULT_ALLOWED_PORTS
    assert plain.fetch_bytes(site.url("/x"), 10).body == b"x"


# -- U9: caps -----------------------------------------------------------------------------------


def test_u9_endless_body_hits_the_byte_cap_and_leaves_no_file(
    canary: Canary, site: Site, tmp_path: Path
) -> None:
    site.routes["/endless"] = endless_chunked
    started = time.monotonic()
    with pytest.raises(TooLarge):
        allowed(canary, max_bytes=1_000_000).fetch_to_file(site.url("/endless"), tmp_path / "o")
    assert time.monotonic() - started < 10
    assert leftovers(tmp_path) == []


def test_u9_declared_length_over_the_cap_fails_before_the_body(
    canary: Canary, site: Site, tmp_path: Path
) -> None:
    def huge(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10 * 1024**3))
        handler.end_headers()
        handler.wfile.write(b"x" * 1000)

    site.routes["/huge"] = huge
    with pytest.raises(TooLarge, match="declared"):
        allowed(canary, max_bytes=1_000_000).fetch_to_file(site.url("/huge"), tmp_path / "o")
    assert leftovers(tmp_path) == []


def test_u9_exact_cap_is_allowed(canary: Canary, site: Site, tmp_path: Path) -> None:
    site.files["/k"] = (b"k" * 1000, "application/octet-stream")
    assert (
        allowed(canary, max_bytes=1000).fetch_to_file(site.url("/k"), tmp_path / "o").size == 1000
    )
    with pytest.raises(TooLarge):
        allowed(canary, max_bytes=999).fetch_to_file(site.url("/k"), tmp_path / "p")
    assert leftovers(tmp_path) == ["o"]


def test_u9_drip_feed_hits_the_wall_time_cap(canary: Canary, site: Site, tmp_path: Path) -> None:
    """One byte every 0.2 s never trips a read timeout; only the wall-time cap stops it."""
    site.routes["/drip"] = drip
    started = time.monotonic()
    with pytest.raises(TimedOut):
        allowed(canary, timeout_seconds=1.0).fetch_to_file(site.url("/drip"), tmp_path / "o")
    assert 0.9 < time.monotonic() - started < 2.0
    assert leftovers(tmp_path) == []


def test_u9_silent_server_hits_the_wall_time_cap(
    canary: Canary, site: Site, tmp_path: Path
) -> None:
    site.routes["/slow"] = lambda h: time.sleep(3)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        allowed(canary, timeout_seconds=0.8).fetch_to_file(site.url("/slow"), tmp_path / "o")
    assert time.monotonic() - started < 1.6
    assert leftovers(tmp_path) == []


def test_slow_dns_counts_against_the_wall_time(
    canary: Canary, dns: FakeDns, tmp_path: Path
) -> None:
    def slow(asked: int) -> list[str]:
        time.sleep(2)
        return ["127.0.0.2"]

    dns["slow.example"] = slow
    started = time.monotonic()
    with pytest.raises(TimedOut):
        allowed(canary, timeout_seconds=0.5).fetch_to_file(
            f"http://slow.example:{canary.port}/", tmp_path / "o"
        )
    assert time.monotonic() - started < 1.2


# -- U10: TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``media.anigraph.test`` (its own CA), made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=media.anigraph.test",
            "-addext", "subjectAltName=DNS:media.anigraph.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_site(certificate: tuple[Path, Path]) -> Iterator[tuple[Site, list[str | None]]]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []

    def record_sni(_sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = record_sni
    with running(Site("127.0.0.2", tls=context)) as started:
        started.files["/ok"] = (b"over tls", "text/plain")
        yield started, names


def test_u10_tls_is_verified_for_the_hostname_on_the_pinned_address(
    canary: Canary,
    certificate: tuple[Path, Path],
    tls_site: tuple[Site, list[str | None]],
    dns: FakeDns,
    spy: ConnectSpy,
) -> None:
    site, names = tls_site
    dns["media.anigraph.test"] = ["127.0.0.2"]
    trusting = allowed(canary, ssl_context=ssl.create_default_context(cafile=str(certificate[0])))
    fetched = trusting.fetch_bytes(f"https://media.anigraph.test:{site.port}/ok", 100)
    assert fetched.body == b"over tls"
    assert names == ["media.anigraph.test"]  # SNI carries the name, the socket the address
    assert spy.calls == [("127.0.0.2", site.port)]
    assert site.requests[0].headers["host"] == f"media.anigraph.test:{site.port}"


def test_u10_invalid_certificates_are_refused(
    canary: Canary,
    certificate: tuple[Path, Path],
    tls_site: tuple[Site, list[str | None]],
    dns: FakeDns,
) -> None:
    site, _ = tls_site
    dns["media.anigraph.test"] = ["127.0.0.2"]
    dns["other.anigraph.test"] = ["127.0.0.2"]
    with pytest.raises(BadCertificate):  # self-signed: not in the default trust store
        allowed(canary).fetch_bytes(f"https://media.anigraph.test:{site.port}/ok", 100)
    trusting = allowed(canary, ssl_context=ssl.create_default_context(cafile=str(certificate[0])))
    with pytest.raises(BadCertificate):  # trusted, but for another name
        trusting.fetch_bytes(f"https://other.anigraph.test:{site.port}/ok", 100)
    with pytest.raises(BadCertificate):  # an IP address is not in the certificate either
        trusting.fetch_bytes(f"https://127.0.0.2:{site.port}/ok", 100)
    assert site.requests == []
    assert not BadCertificate("x").transient


# -- U11 and the environment ----------------------------------------------------------------------


def test_u11_proxy_environment_is_ignored(
    canary: Canary, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with running(Site("127.0.0.3")) as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.3:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        site.files["/ok"] = (b"direct", "text/plain")
        assert allowed(canary).fetch_bytes(site.url("/ok"), 100).body == b"direct"
        assert proxy.hits == 0


def test_no_cookies_netrc_or_auth_are_sent(
    canary: Canary, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.2 login alice password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    def set_cookie(handler: Handler) -> None:
        handler.send_response(302)
        handler.send_header("Set-Cookie", "session=abc; Path=/")
        handler.send_header("Location", "/next")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    site.routes["/start"] = set_cookie
    site.files["/next"] = (b"ok", "text/plain")
    session = allowed(canary).session()
    with session:
        session.fetch_bytes(site.url("/start"), 100)
        session.fetch_bytes(site.url("/next"), 100)
    for request in site.requests:
        assert "cookie" not in request.headers
        assert "authorization" not in request.headers
        assert request.headers["user-agent"] == "anigraph"
        assert request.headers["accept-encoding"] == "identity"


# -- ordinary behaviour ---------------------------------------------------------------------------


def test_fetch_to_file_result_and_atomic_write(canary: Canary, site: Site, tmp_path: Path) -> None:
    body = bytes(range(256)) * 1000
    site.files["/v.mp4"] = (body, "video/mp4")
    site.routes["/moved"] = lambda h: h.redirect("/v.mp4", 301)
    target = tmp_path / "video.download"
    target.write_bytes(b"old")
    result = allowed(canary).fetch_to_file(site.url("/moved"), target)
    assert result.url_final == site.url("/v.mp4")
    assert (result.status, result.content_type, result.size) == (200, "video/mp4", len(body))
    assert result.path == target and target.read_bytes() == body
    assert leftovers(tmp_path) == ["video.download"]


def test_http_errors_are_typed(canary: Canary, site: Site, tmp_path: Path) -> None:
    site.routes["/busy"] = lambda h: h.send_body(b"busy", status=503)
    with pytest.raises(HttpStatus) as missing:
        allowed(canary).fetch_to_file(site.url("/missing"), tmp_path / "o")
    assert missing.value.status == 404 and not missing.value.transient
    with pytest.raises(HttpStatus) as busy:
        allowed(canary).fetch_to_file(site.url("/busy"), tmp_path / "o")
    assert busy.value.status == 503 and busy.value.transient
    assert leftovers(tmp_path) == []


def test_refused_connection_is_unreachable(canary: Canary, tmp_path: Path) -> None:
    with running(Site("127.0.0.2")) as gone:
        port = gone.port
    with pytest.raises(Unreachable) as caught:
        allowed(canary).fetch_to_file(f"http://127.0.0.2:{port}/", tmp_path / "o")
    assert caught.value.transient
    assert leftovers(tmp_path) == []


def test_check_and_vet_url(canary: Canary, dns: FakeDns) -> None:
    policy = AddressPolicy()
    assert str(check_url("HTTP://Example.COM/a#frag", policy)) == "http://example.com/a"
    dns["cdn.example"] = ["93.184.216.34", "2606:2800:220:1::1"]
    dns["lan.example"] = ["93.184.216.34", "10.0.0.7"]
    default = Fetcher(policy)
    assert [str(a) for a in default.vet_url("https://cdn.example/v.mp4")] == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]
    with pytest.raises(BlockedAddress, match=r"10\.0\.0\.7"):
        default.vet_url("https://lan.example/v.mp4")
    with pytest.raises(Unreachable):
        default.vet_url("https://no-such-host.invalid/v.mp4")


# -- callbacks (post_json) ------------------------------------------------------------------------


def test_post_json_delivers_and_reads_a_capped_prefix(canary: Canary, site: Site) -> None:
    site.routes["/hook"] = lambda h: h.send_body(b"A" * 5000, "text/plain")
    status, prefix = allowed(canary, max_bytes=100).post_json(
        site.url("/hook"), b'{"EventType":"x"}', {"X-Extra": "1"}
    )
    assert (status, prefix) == (200, b"A" * 100)
    request = site.requests[0]
    assert (request.method, request.body) == ("POST", b'{"EventType":"x"}')
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-extra"] == "1"


def test_post_json_does_not_follow_redirects(canary: Canary, site: Site) -> None:
    site.routes["/hook"] = lambda h: h.redirect(f"http://127.0.0.1:{canary.port}/", 307)
    status, _ = allowed(canary).post_json(site.url("/hook"), b"{}")
    assert status == 307
    assert [r.path for r in site.requests] == ["/hook"]


def test_post_json_applies_the_same_address_rules(
    canary: Canary, spy: ConnectSpy, dns: FakeDns
) -> None:
    dns["hooks.evil.example"] = ["127.0.0.1"]
    for url in (
        f"http://127.0.0.1:{canary.port}/",
        f"http://hooks.evil.example:{canary.port}/",
        f"http://[::ffff:127.0.0.1]:{canary.port}/",
        "http://169.254.169.254/",
    ):
        with pytest.raises(BlockedAddress):
            fetcher(canary).post_json(url, b"{}")
    with pytest.raises(BadUrl):
        fetcher(canary).post_json(f"http://u:p@127.0.0.1:{canary.port}/", b"{}")
    assert spy.calls == []


# -- HLS ------------------------------------------------------------------------------------------

SEGMENT_SECONDS = 2
HLS_FPS = 10


@pytest.fixture(scope="module")
def hls_segments(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Three real 2 s MPEG-TS segments of one 6 s H.264 clip (PyAV's HLS muxer cuts them)."""
    folder = tmp_path_factory.mktemp("hls")
    make_clip(
        folder / "index.m3u8",
        seconds=3 * SEGMENT_SECONDS,
        fps=HLS_FPS,
        width=160,
        height=96,
        gop=SEGMENT_SECONDS * HLS_FPS,
    )
    segments = [(folder / f"index{n}.ts").read_bytes() for n in range(3)]
    assert not (folder / "index3.ts").exists()
    return segments


def media_playlist(*uris: str, extra: str = "") -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    lines += extra.splitlines()
    for uri in uris:
        lines += ["#EXTINF:2.000000,", uri]
    return ("\n".join([*lines, "#EXT-X-ENDLIST", ""])).encode()


MPEGURL = "application/vnd.apple.mpegurl"


def serve_hls(site: Site, segments: list[bytes]) -> None:
    """A master playlist with a low and a high variant; only the high one has real segments."""
    site.files["/hls/master.m3u8"] = (
        (
            b"#EXTM3U\n"
            b'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="audio/index.m3u8"\n'
            b'#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=80x48,CODECS="avc1.42e00a"\n'
            b"low/index.m3u8\n"
            b'#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=160x96,CODECS="avc1.42e00a,mp4a.40.2"\n'
            b"high/index.m3u8\n"
            b"#EXT-X-STREAM-INF:BANDWIDTH=500000\n"
            b"mid/index.m3u8\n"
        ),
        MPEGURL,
    )
    site.files["/hls/high/index.m3u8"] = (
        media_playlist("seg0.ts", "../high/seg1.ts", site.url("/hls/high/seg2.ts")),
        MPEGURL,
    )
    for n, data in enumerate(segments):
        site.files[f"/hls/high/seg{n}.ts"] = (data, "video/mp2t")


def test_hls_master_and_segments_are_fetched_and_concatenated(
    canary: Canary, site: Site, hls_segments: list[bytes], tmp_path: Path
) -> None:
    serve_hls(site, hls_segments)
    site.routes["/start.m3u8"] = lambda h: h.redirect("/hls/master.m3u8", 302)
    out = fetch_hls(allowed(canary), site.url("/start.m3u8"), tmp_path)
    assert out.parent == tmp_path and out.suffix == ".ts"
    assert leftovers(tmp_path) == [out.name]
    assert out.read_bytes() == b"".join(hls_segments)
    paths = [r.path for r in site.requests]
    assert paths == [
        "/start.m3u8",
        "/hls/master.m3u8",
        "/hls/high/index.m3u8",
        "/hls/high/seg0.ts",
        "/hls/high/seg1.ts",
        "/hls/high/seg2.ts",
    ]
    with av.open(str(out)) as container:
        assert container.format.name == "mpegts"
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(3 * SEGMENT_SECONDS, abs=0.15)
        frames = list(container.decode(video=0))
    assert len(frames) == 3 * SEGMENT_SECONDS * HLS_FPS
    assert frames[-1].time - frames[0].time == pytest.approx(3 * SEGMENT_SECONDS - 0.1, abs=0.01)


def test_hls_segment_at_a_blocked_address_is_refused(
    canary: Canary, site: Site, hls_segments: list[bytes], tmp_path: Path, dns: FakeDns
) -> None:
    dns["segments.evil.example"] = ["127.0.0.1"]
    serve_hls(site, hls_segments)
    for bad in (
        f"http://127.0.0.1:{canary.port}/seg.ts",
        f"http://[::ffff:127.0.0.1]:{canary.port}/seg.ts",
        f"http://segments.evil.example:{canary.port}/seg.ts",
    ):
        site.files["/hls/bad.m3u8"] = (media_playlist("high/seg0.ts", bad), MPEGURL)
        with pytest.raises(BlockedAddress):
            fetch_hls(allowed(canary), site.url("/hls/bad.m3u8"), tmp_path)
    assert leftovers(tmp_path) == []


def test_hls_bad_segment_urls_cost_no_segment_traffic(
    canary: Canary, site: Site, hls_segments: list[bytes], tmp_path: Path
) -> None:
    serve_hls(site, hls_segments)
    for bad in ("file:///etc/passwd", "gopher://127.0.0.2/", "http://u:p@127.0.0.2/x.ts"):
        site.requests.clear()
        site.files["/hls/bad.m3u8"] = (media_playlist("high/seg0.ts", bad), MPEGURL)
        with pytest.raises(BadUrl):
            fetch_hls(allowed(canary), site.url("/hls/bad.m3u8"), tmp_path)
        assert [r.path for r in site.requests] == ["/hls/bad.m3u8"]
    assert leftovers(tmp_path) == []


def test_hls_total_bytes_are_capped(
    canary: Canary, site: Site, hls_segments: list[bytes], tmp_path: Path
) -> None:
    serve_hls(site, hls_segments)
    cap = len(hls_segments[0]) + len(hls_segments[1])
    with pytest.raises(TooLarge):
        fetch_hls(allowed(canary, max_bytes=cap), site.url("/hls/master.m3u8"), tmp_path)
    assert leftovers(tmp_path) == []
    site.files["/hls/big.m3u8"] = (b"#EXTM3U\n" + b"#" * 2_000_000, MPEGURL)
    with pytest.raises(TooLarge):
        fetch_hls(allowed(canary), site.url("/hls/big.m3u8"), tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('#EXT-X-KEY:METHOD=AES-128,URI="key.bin"', "encrypted"),
        ('#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key.bin"', "encrypted"),
        ("#EXT-X-BYTERANGE:1000@0", "byte ranges"),
        ('#EXT-X-MAP:URI="init.mp4"', "EXT-X-MAP"),
    ],
)
def test_hls_unsupported_features_are_refused(
    canary: Canary, site: Site, hls_segments: list[bytes], tmp_path: Path, extra: str, message: str
) -> None:
    serve_hls(site, hls_segments)
    site.files["/hls/x.m3u8"] = (media_playlist("high/seg0.ts", extra=extra), MPEGURL)
    with pytest.raises(Unsupported, match=message):
        fetch_hls(allowed(canary), site.url("/hls/x.m3u8"), tmp_path)
    assert [r.path for r in site.requests] == ["/hls/x.m3u8"]
    assert leftovers(tmp_path) == []


def test_hls_key_method_none_is_fine(
    canary: Canary, site: Site, hls_segments: list[bytes], tmp_path: Path
) -> None:
    serve_hls(site, hls_segments)
    site.files["/hls/k.m3u8"] = (
        media_playlist("high/seg0.ts", extra="#EXT-X-KEY:METHOD=NONE"),
        MPEGURL,
    )
    assert (
        fetch_hls(allowed(canary), site.url("/hls/k.m3u8"), tmp_path).read_bytes()
        == (hls_segments[0])
    )


def test_hls_fmp4_segments_are_refused(
    canary: Canary, site: Site, hls_segments: list[bytes], tmp_path: Path
) -> None:
    mp4 = make_clip(tmp_path / "seg.mp4", seconds=1, fps=10, width=64, height=48)
    site.files["/hls/seg.mp4"] = (mp4.read_bytes(), "video/mp4")
    site.files["/hls/f.m3u8"] = (media_playlist("seg.mp4"), MPEGURL)
    mp4.unlink()
    with pytest.raises(Unsupported, match="fMP4"):
        fetch_hls(allowed(canary), site.url("/hls/f.m3u8"), tmp_path)
    site.files["/hls/g.m3u8"] = (media_playlist("junk.ts"), MPEGURL)
    site.files["/hls/junk.ts"] = (b"<html>not video</html>" * 20, "text/html")
    with pytest.raises(Unsupported, match="not MPEG-TS"):
        fetch_hls(allowed(canary), site.url("/hls/g.m3u8"), tmp_path)
    assert leftovers(tmp_path) == []


def test_hls_parsing() -> None:
    master = (
        "\ufeff#EXTM3U\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2"\n'
        "a.m3u8\n"
        "#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=9,BANDWIDTH=2560000\n"
        "b.m3u8\n"
    )
    variants = parse_master(master)
    assert [(v.bandwidth, v.uri) for v in variants] == [(1280000, "a.m3u8"), (2560000, "b.m3u8")]
    media = parse_media(media_playlist("s0.ts", "s1.ts").decode())
    assert (media.segments, media.duration, media.ended) == (["s0.ts", "s1.ts"], 4.0, True)
    with pytest.raises(Unsupported, match="EXTM3U"):
        parse_media("<html></html>")
    with pytest.raises(Unsupported, match="no segment"):
        parse_media("#EXTM3U\n#EXT-X-ENDLIST\n")
    with pytest.raises(Unsupported, match="BANDWIDTH"):
        parse_master("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nx.m3u8\n")


@pytest.mark.parametrize(
    ("url", "content_type", "head", "expected"),
    [
        ("http://h/v.mp4", "video/mp4", b"#EXTM3U\n#EXT-X-VERSION:3", True),
        ("http://h/v", "", b"\xef\xbb\xbf  #EXTM3U\n", True),
        ("http://h/v.m3u8", MPEGURL, b"\x00\x00\x00\x18ftypisom", False),
        ("http://h/v.m3u8?x=1", "", b"", True),
        ("http://h/v", "application/x-mpegURL; charset=utf-8", b"", True),
        ("http://h/v.mp4", "video/mp4", b"\x00\x00\x00\x18ftypisom", False),
        ("http://h/v.ts", "video/mp2t", b"G@\x00\x10", False),
    ],
)
def test_is_hls(url: str, content_type: str, head: bytes, expected: bool) -> None:
    assert is_hls(url, content_type, head) is expected
