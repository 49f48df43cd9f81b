"""``/files/{key}`` over HTTP: a real Starlette app and TestClient against every Store backend.

Hostile paths are sent twice: through the client (which may normalise ``..`` away, as browsers
do) and as raw ASGI scopes, so the endpoint itself is shown to refuse what a raw socket could
send.
"""

from __future__ import annotations

import random
from email.utils import formatdate
from pathlib import Path

import anyio
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Message, Scope

from anigraph.api.files import CACHE_FOREVER, UNSATISFIABLE, files_route, parse_range
from anigraph.storage import LocalStore, Store, StoredObject

pytest_plugins = ["storage_fixtures"]

SIZE = 200_000
DATA = random.Random(11).randbytes(SIZE)
SECRET = b"root:x:0:0:top secret"


def local_only(store: Store) -> LocalStore:
    """Skip on other backends: the test plants files or symlinks in a local root."""
    if not isinstance(store, LocalStore):
        pytest.skip("plants files or symlinks in the local store's folder")
    return store


def internal_location(store: Store) -> str:
    """Where the store keeps objects (its folder or its bucket): never shown to clients."""
    if isinstance(store, LocalStore):
        return str(store.root)
    from anigraph.storage.s3 import S3Store

    assert isinstance(store, S3Store)
    return store.bucket


@pytest.fixture
def app(store: Store) -> Starlette:
    return Starlette(routes=[files_route(store)])


@pytest.fixture
def client(app: Starlette) -> TestClient:
    return TestClient(app)


@pytest.fixture
def stored(store: Store, tmp_path: Path) -> StoredObject:
    source = tmp_path / "out.gif"
    source.write_bytes(DATA)
    return store.put_file(store.new_key(1500000001, "output", ".gif"), source, "image/gif")


def url(obj: StoredObject) -> str:
    return f"/files/{obj.key}"


def raw_request(
    app: Starlette, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Call the ASGI app with ``path`` exactly as given: no client-side normalisation."""
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        await app(scope, receive, send)

    anyio.run(run)
    start, *rest = messages
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in rest)


# -- whole object ------------------------------------------------------------------------------


def test_get_whole_object(client: TestClient, stored: StoredObject) -> None:
    response = client.get(url(stored))
    assert response.status_code == 200
    assert response.content == DATA
    headers = response.headers
    assert headers["content-type"] == "image/gif"
    assert headers["content-length"] == str(SIZE)
    assert headers["etag"] == f'"{stored.md5}"'
    assert headers["last-modified"] == formatdate(stored.modified, usegmt=True)
    assert headers["accept-ranges"] == "bytes"
    assert headers["cache-control"] == "public, max-age=31536000, immutable" == CACHE_FOREVER
    assert headers["x-content-type-options"] == "nosniff"
    assert "content-range" not in headers


@pytest.mark.parametrize(
    ("suffix", "content_type"),
    [(".gif", "image/gif"), (".webp", "image/webp"), (".mp4", "video/mp4")],
)
def test_content_type_is_exact(
    client: TestClient, store: Store, tmp_path: Path, suffix: str, content_type: str
) -> None:
    source = tmp_path / f"x{suffix}"
    source.write_bytes(b"bytes")
    obj = store.put_file(store.new_key(1, "output", suffix), source, content_type)
    response = client.get(url(obj))
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type  # no "; charset=" appended
    assert response.content == b"bytes"


def test_head_has_the_headers_and_no_body(client: TestClient, stored: StoredObject) -> None:
    get = client.get(url(stored))
    head = client.head(url(stored))
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified", "cache-control"):
        assert head.headers[name] == get.headers[name], name
    assert head.headers["accept-ranges"] == "bytes"


def test_head_ignores_range(client: TestClient, stored: StoredObject) -> None:
    """RFC 9110 14.2: range handling is defined for GET only."""
    head = client.head(url(stored), headers={"Range": "bytes=0-9"})
    assert head.status_code == 200
    assert head.headers["content-length"] == str(SIZE)


def test_empty_object(client: TestClient, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "empty.gif"
    source.write_bytes(b"")
    obj = store.put_file(store.new_key(1, "output", ".gif"), source, "image/gif")
    response = client.get(url(obj))
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == "0"
    unsatisfiable = client.get(url(obj), headers={"Range": "bytes=0-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == "bytes */0"


# -- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=100-65636", 100, 65636),
        ("bytes=150000-", 150000, SIZE - 1),
        ("bytes=199999-", SIZE - 1, SIZE - 1),
        ("bytes=-50", SIZE - 50, SIZE - 1),
        ("bytes=-1", SIZE - 1, SIZE - 1),
        ("bytes=-999999", 0, SIZE - 1),
        ("bytes=190000-999999999", 190000, SIZE - 1),
        ("BYTES = 5-9", 5, 9),
        ("bytes=5-9,", 5, 9),
        ("bytes= 5 - 9 ", 5, 9),
    ],
)
def test_single_range(
    client: TestClient, stored: StoredObject, header: str, first: int, last: int
) -> None:
    response = client.get(url(stored), headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["etag"] == stored.etag


@pytest.mark.parametrize("header", ["bytes=200000-", "bytes=200000-200010", "bytes=-0"])
def test_unsatisfiable_range(client: TestClient, stored: StoredObject, header: str) -> None:
    response = client.get(url(stored), headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert len(response.content) < 100


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=0-9,20-29", id="two-ranges"),
        pytest.param("bytes=0-9, -5", id="range-and-suffix"),
        pytest.param("bytes=abc", id="letters"),
        pytest.param("bytes=9-5", id="last-before-first"),
        pytest.param("bytes=", id="empty-set"),
        pytest.param("bytes=-", id="only-dash"),
        pytest.param("bytes=+1-5", id="sign"),
        pytest.param("bytes=0x10-", id="hex"),
        pytest.param("bytes=\u0661-5", id="arabic-digit"),
        pytest.param("items=0-9", id="other-unit"),
        pytest.param("bytes 0-9", id="no-equals"),
        pytest.param("0-9", id="no-unit"),
        pytest.param("bytes=" + "9" * 300 + "-", id="huge-number"),
    ],
)
def test_multiple_or_malformed_ranges_get_the_whole_object(
    client: TestClient, stored: StoredObject, header: str
) -> None:
    response = client.get(url(stored), headers={"Range": header.encode()})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


def test_parse_range_units() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-", 10) == (0, 9)
    assert parse_range("bytes=-20", 10) == (0, 9)
    assert parse_range("bytes=10-", 10) is UNSATISFIABLE
    assert parse_range("bytes=-5", 0) is UNSATISFIABLE
    assert parse_range("bytes=9-5", 10) is None


# -- conditional requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"nope", {etag}', "*"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_gives_304(
    client: TestClient, stored: StoredObject, if_none_match: str, method: str
) -> None:
    response = client.request(
        method,
        url(stored),
        headers={"If-None-Match": if_none_match.format(etag=stored.etag), "Range": "bytes=0-9"},
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == stored.etag
    assert response.headers["cache-control"] == CACHE_FOREVER


def test_if_none_match_other_etag_gives_200(client: TestClient, stored: StoredObject) -> None:
    response = client.get(url(stored), headers={"If-None-Match": '"0123"'})
    assert (response.status_code, response.content) == (200, DATA)


def test_if_modified_since(client: TestClient, stored: StoredObject) -> None:
    now = formatdate(stored.modified + 10, usegmt=True)
    earlier = formatdate(stored.modified - 3600, usegmt=True)
    assert client.get(url(stored), headers={"If-Modified-Since": now}).status_code == 304
    assert client.get(url(stored), headers={"If-Modified-Since": earlier}).status_code == 200
    assert client.get(url(stored), headers={"If-Modified-Since": "garbage"}).status_code == 200
    # If-None-Match takes precedence (RFC 9110 13.1.3).
    both = client.get(url(stored), headers={"If-Modified-Since": now, "If-None-Match": '"x"'})
    assert both.status_code == 200


def test_if_range_matching_etag_gives_the_range(client: TestClient, stored: StoredObject) -> None:
    response = client.get(url(stored), headers={"Range": "bytes=10-19", "If-Range": stored.etag})
    assert (response.status_code, response.content) == (206, DATA[10:20])


@pytest.mark.parametrize("if_range", ['"other"', "W/{etag}", "Mon, 01 Jan 2001 00:00:00 GMT"])
def test_if_range_mismatch_gives_the_whole_object(
    client: TestClient, stored: StoredObject, if_range: str
) -> None:
    response = client.get(
        url(stored),
        headers={"Range": "bytes=10-19", "If-Range": if_range.format(etag=stored.etag)},
    )
    assert (response.status_code, response.content) == (200, DATA)


def test_if_range_matching_date_gives_the_range(client: TestClient, stored: StoredObject) -> None:
    last_modified = client.head(url(stored)).headers["last-modified"]
    response = client.get(url(stored), headers={"Range": "bytes=-3", "If-Range": last_modified})
    assert (response.status_code, response.content) == (206, DATA[-3:])


# -- not found, traversal ----------------------------------------------------------------------


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file beside the store root, and one that looks like /etc/passwd from the root."""
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_bytes(SECRET)
    return path


TRAVERSALS = [
    "/files/../secret.txt",
    "/files/%2e%2e/secret.txt",
    "/files/%2E%2E/secret.txt",
    "/files/..%2fsecret.txt",
    "/files/a/../../etc/passwd",
    "/files/a/%2e%2e/%2e%2e/etc/passwd",
    "/files/..%5csecret.txt",
    "/files/%00",
    "/files/secret.txt%00.gif",
    "/files//etc/passwd",
    "/files/%2fetc/passwd",
    "/files/",
    "/files/./secret.txt",
    "/files/1/output/x.gif.meta.json",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_are_404_through_the_client(
    client: TestClient, store: Store, secret: Path, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert SECRET not in response.content
    assert internal_location(store) not in response.text
    assert len(response.content) < 100


RAW_TRAVERSALS = [
    "/files/../secret.txt",
    "/files/../../../../../../etc/passwd",
    "/files/a/../../etc/passwd",
    "/files/1/../../secret.txt",
    "/files/..\\secret.txt",
    "/files/secret.txt\x00.gif",
    "/files//etc/passwd",
    "/files/\uff0e\uff0e/secret.txt",
]


@pytest.mark.parametrize("path", RAW_TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_traversal_attempts_are_404_at_the_endpoint(
    app: Starlette, store: Store, secret: Path, path: str, method: str
) -> None:
    status, headers, body = raw_request(app, path, method)
    assert status == 404
    assert SECRET not in body
    assert internal_location(store).encode() not in body
    assert headers["content-type"].startswith("text/plain")


def test_unknown_key_is_404(client: TestClient, store: Store) -> None:
    response = client.get("/files/" + store.new_key(1, "output", ".gif"))
    assert response.status_code == 404
    assert response.text == "Not Found"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    assert client.head("/files/1/output/nothing.gif").status_code == 404


def test_folder_of_an_object_is_404(client: TestClient, stored: StoredObject) -> None:
    assert client.get("/files/" + stored.key.rsplit("/", 1)[0]).status_code == 404


def test_symlink_out_of_the_root_is_404(client: TestClient, store: Store, secret: Path) -> None:
    store = local_only(store)
    (store.root / "evil.gif").symlink_to(secret)
    (store.root / "up").symlink_to(secret.parent)
    for path in ("/files/evil.gif", "/files/up/secret.txt", "/files/up/etc/passwd"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert SECRET not in response.content


def test_object_deleted_between_stat_and_open_is_404(store: Store, stored: StoredObject) -> None:
    store = local_only(store)

    class Vanishing(LocalStore):
        def open(self, key: str, start: int = 0, end: int | None = None):  # type: ignore[no-untyped-def]
            self.delete(key)
            return super().open(key, start, end)

    client = TestClient(Starlette(routes=[files_route(Vanishing(store.root))]))
    assert client.get(url(stored)).status_code == 404


def test_served_over_a_real_socket(store: Store, stored: StoredObject) -> None:
    """The streaming body and Content-Length agree on the wire, for 200 and 206."""
    import socket
    import threading

    import httpx
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        Starlette(routes=[files_route(store)]), host="127.0.0.1", port=port, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.02)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as http:
            full = http.get(url(stored))
            assert (full.status_code, full.content) == (200, DATA)
            part = http.get(url(stored), headers={"Range": "bytes=65530-65545"})
            assert (part.status_code, part.content) == (206, DATA[65530:65546])
            head = http.head(url(stored))
            assert head.headers["content-length"] == str(SIZE) and head.content == b""
            traversal = http.get(f"{base}/files/%2e%2e/secret.txt")
            assert traversal.status_code == 404
    finally:
        server.should_exit = True
        thread.join(timeout=10)
