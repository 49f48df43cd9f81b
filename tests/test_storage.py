"""The Store contract, run against every backend, then what only the local store promises.

The contract part is parametrized by the ``store`` fixture (``storage_fixtures``): a new backend
(S3, memory) joins by adding a parameter there, and must pass every test in the first half of
this file (and ``test_storage_sweep.py``) unchanged.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from anigraph.storage import (
    CHUNK_SIZE,
    InvalidKey,
    ListedObject,
    LocalStore,
    Store,
    StoredObject,
    new_key,
    validate_key,
)
from anigraph.storage import local as local_module

pytest_plugins = ["storage_fixtures"]

BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/etc/passwd", id="leading-slash"),
    pytest.param("../x", id="dotdot"),
    pytest.param("..", id="only-dotdot"),
    pytest.param(".", id="only-dot"),
    pytest.param("a/../../etc/passwd", id="dotdot-inside"),
    pytest.param("a/./b", id="dot-segment"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("..\\..\\x", id="backslash-dotdot"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a b", id="space"),
    pytest.param("a%2e%2e", id="percent"),
    pytest.param("caf\u00e9.gif", id="non-ascii"),
    pytest.param("\uff0e\uff0e/x", id="fullwidth-dots"),
    pytest.param("1/output/.x.gif.0123.tmp", id="hidden-temp-name"),
    pytest.param("1/output/x.gif.meta.json", id="sidecar-name"),
    pytest.param("a" * 257, id="too-long"),
    pytest.param("a/" + "b" * 201, id="segment-too-long"),
]


def random_bytes(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "scratch" / "out.gif"
    path.parent.mkdir()
    path.write_bytes(random_bytes(200_000))
    return path


def read_all(store: Store, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.open(key, start, end))


# -- keys --------------------------------------------------------------------------------------


def test_new_key_shape_and_uniqueness(store: Store) -> None:
    made = {store.new_key(1500000001, "output", ".gif") for _ in range(1000)}
    assert len(made) == 1000
    today = datetime.now(UTC).strftime("%Y%m%d")
    for key in made:
        assert re.fullmatch(rf"1500000001/output/{today}/[0-9a-f]{{32}}\.gif", key), key
        assert validate_key(key) == key


@pytest.mark.parametrize("kind", ["media", "output", "upload"])
@pytest.mark.parametrize("suffix", ["", ".gif", ".webp", ".mp4", ".m3u8"])
def test_new_key_accepts_kinds_and_suffixes(store: Store, kind: str, suffix: str) -> None:
    key = store.new_key(7, kind, suffix)
    assert key.startswith(f"7/{kind}/") and key.endswith(suffix)


@pytest.mark.parametrize(
    ("sub_app_id", "kind", "suffix"),
    [
        (1, "outputs", ".gif"),
        (1, "../x", ".gif"),
        (1, "output", "gif"),
        (1, "output", ".GIF"),
        (1, "output", ".toolongext"),
        (1, "output", "./"),
        (1, "output", ".gif/../../x"),
        (-1, "output", ".gif"),
        (True, "output", ".gif"),
        ("1", "output", ".gif"),
    ],
)
def test_new_key_rejects_bad_parts(store: Store, sub_app_id: Any, kind: str, suffix: str) -> None:
    with pytest.raises(ValueError):
        store.new_key(sub_app_id, kind, suffix)


def test_new_key_day_is_utc() -> None:
    # 23:30 at UTC-5 on 31 Dec is already 1 Jan in UTC.
    late = datetime(2024, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert new_key(1, "media", ".mp4", now=late).startswith("1/media/20250101/")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_method_rejects_bad_keys(store: Store, key: str, source: Path) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)
    with pytest.raises(InvalidKey):
        store.stat(key)
    with pytest.raises(InvalidKey):
        store.open(key)
    with pytest.raises(InvalidKey):
        store.local_path(key)
    with pytest.raises(InvalidKey):
        store.delete(key)
    with pytest.raises(InvalidKey):
        store.presigned_url(key, 60)
    with pytest.raises(InvalidKey):
        store.put_file(key, source, "image/gif")
    with pytest.raises(InvalidKey), store.writer(key, "image/gif") as handle:
        handle.write(b"never")
    assert source.exists()
    assert issubclass(InvalidKey, ValueError)


# -- put_file, stat, open, delete --------------------------------------------------------------


def test_put_file_then_stat(store: Store, source: Path) -> None:
    data = source.read_bytes()
    key = store.new_key(1, "output", ".gif")
    before = time.time()
    obj = store.put_file(key, source, "image/gif")
    assert obj == store.stat(key)
    assert obj.key == key
    assert obj.size == len(data)
    assert obj.md5 == md5_hex(data)
    assert obj.etag == f'"{md5_hex(data)}"'
    assert obj.content_type == "image/gif"
    assert before - 2 <= obj.modified <= time.time() + 2
    assert read_all(store, key) == data
    assert source.read_bytes() == data, "a copy leaves the source alone"


def test_put_file_move_consumes_source(store: Store, source: Path) -> None:
    data = source.read_bytes()
    old = time.time() - 86_400
    os.utime(source, (old, old))
    key = store.new_key(1, "output", ".gif")
    obj = store.put_file(key, source, "image/gif", move=True)
    assert not source.exists()
    assert read_all(store, key) == data
    assert obj.md5 == md5_hex(data)
    assert obj.modified > old + 3600, "modified is the publication time, not the scratch file's"


def test_put_file_with_a_known_md5_keeps_it_and_the_content(store: Store, source: Path) -> None:
    data = source.read_bytes()
    for move in (False, True):
        key = store.new_key(1, "output", ".gif")
        obj = store.put_file(key, source, "image/gif", move=move, md5=md5_hex(data))
        assert obj == store.stat(key)
        assert (obj.md5, obj.etag, obj.size) == (md5_hex(data), f'"{md5_hex(data)}"', len(data))
        assert read_all(store, key) == data
    assert not source.exists()


def test_stat_open_delete_missing(store: Store) -> None:
    key = store.new_key(1, "output", ".gif")
    assert store.stat(key) is None
    assert store.local_path(key) is None
    with pytest.raises(FileNotFoundError):
        store.open(key)
    assert store.delete(key) is False


def test_presigned_url_is_none_or_serves_the_object_to_anyone(store: Store, source: Path) -> None:
    key = store.new_key(1, "output", ".gif")
    store.put_file(key, source, "image/gif")
    with pytest.raises(ValueError, match="expires"):
        store.presigned_url(key, 0)
    url = store.presigned_url(key, 60)
    if url is None:
        assert isinstance(store, LocalStore)  # only a store on this machine may have no links
        return
    # A plain GET with no credentials of ours: the URL alone carries the permission.
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == source.read_bytes()
    assert response.headers["content-type"] == "image/gif"


def test_delete(store: Store, source: Path) -> None:
    key = store.new_key(1, "output", ".gif")
    store.put_file(key, source, "image/gif")
    assert store.delete(key) is True
    assert store.stat(key) is None
    with pytest.raises(FileNotFoundError):
        store.open(key)
    assert store.delete(key) is False


def test_prefix_of_a_key_is_not_an_object(store: Store, source: Path) -> None:
    key = store.new_key(1, "output", ".gif")
    store.put_file(key, source, "image/gif")
    folder = key.rsplit("/", 1)[0]
    assert store.stat(folder) is None
    with pytest.raises(FileNotFoundError):
        store.open(folder)
    assert store.delete(folder) is False
    assert store.stat(key) is not None


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 0),
        (0, 99),
        (100, 199),
        (CHUNK_SIZE - 1, CHUNK_SIZE),
        (CHUNK_SIZE, 3 * CHUNK_SIZE + 5),
        (199_999, None),
        (199_999, 199_999),
        (150_000, 10_000_000),
        (200_000, None),
        (300_000, 300_010),
    ],
)
def test_open_ranges_inclusive(store: Store, source: Path, start: int, end: int | None) -> None:
    data = source.read_bytes()
    key = store.new_key(1, "output", ".gif")
    store.put_file(key, source, "image/gif")
    chunks = list(store.open(key, start, end))
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    stop = None if end is None else end + 1
    assert b"".join(chunks) == data[start:stop]


def test_open_full_object_streams_in_64k_chunks(store: Store, source: Path) -> None:
    key = store.new_key(1, "output", ".gif")
    store.put_file(key, source, "image/gif")
    sizes = [len(chunk) for chunk in store.open(key)]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE, 200_000 - 3 * CHUNK_SIZE]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 9)])
def test_open_rejects_bad_range(store: Store, source: Path, start: int, end: int | None) -> None:
    key = store.new_key(1, "output", ".gif")
    store.put_file(key, source, "image/gif")
    with pytest.raises(ValueError):
        store.open(key, start, end)


def test_empty_object(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "empty.gif"
    empty.write_bytes(b"")
    key = store.new_key(1, "output", ".gif")
    obj = store.put_file(key, empty, "image/gif")
    assert obj.size == 0 and obj.md5 == md5_hex(b"")
    assert read_all(store, key) == b""


@pytest.mark.parametrize(
    "content_type",
    ["text/html\r\nSet-Cookie: a=b", "image/gif\n", "gif", "", "image/g\u00eff", "a/b; x=\x01"],
)
def test_bad_content_type_is_refused_and_nothing_is_written(
    store: Store, source: Path, content_type: str
) -> None:
    key = store.new_key(1, "output", ".gif")
    with pytest.raises(ValueError):
        store.put_file(key, source, content_type)
    with pytest.raises(ValueError), store.writer(key, content_type) as handle:
        handle.write(b"x")
    assert store.stat(key) is None


def test_content_type_with_parameters_round_trips(store: Store, source: Path) -> None:
    key = store.new_key(1, "media", ".mp4")
    store.put_file(key, source, 'video/mp4; codecs="avc1.42E01E"')
    obj = store.stat(key)
    assert obj is not None and obj.content_type == 'video/mp4; codecs="avc1.42E01E"'


# -- writer ------------------------------------------------------------------------------------


def test_writer_publishes_on_clean_exit(store: Store) -> None:
    data = random_bytes(150_000, seed=3)
    key = store.new_key(1, "output", ".webp")
    with store.writer(key, "image/webp") as handle:
        handle.write(data[:1000])
        assert store.stat(key) is None, "nothing is visible before the block ends"
        handle.write(data[1000:])
    obj = store.stat(key)
    assert obj is not None
    assert (obj.size, obj.md5, obj.content_type) == (len(data), md5_hex(data), "image/webp")
    assert read_all(store, key) == data


def test_writer_md5_covers_bytes_rewritten_after_a_seek(store: Store) -> None:
    """Muxers patch headers after the fact; the MD5 must describe the final bytes."""
    key = store.new_key(1, "output", ".mp4")
    with store.writer(key, "video/mp4") as handle:
        handle.write(b"\0" * 8 + b"payload" * 1000)
        handle.seek(0)
        handle.write(b"HEADER!!")
        handle.seek(0, os.SEEK_END)
        handle.write(b"tail")
    final = b"HEADER!!" + b"payload" * 1000 + b"tail"
    obj = store.stat(key)
    assert obj is not None and obj.md5 == md5_hex(final)
    assert read_all(store, key) == final


def test_writer_tolerates_the_caller_closing_the_file(store: Store) -> None:
    key = store.new_key(1, "output", ".gif")
    with store.writer(key, "image/gif") as handle:
        handle.write(b"GIF89a...")
        handle.close()
    obj = store.stat(key)
    assert obj is not None and obj.md5 == md5_hex(b"GIF89a...")


def test_writer_failure_leaves_nothing(store: Store) -> None:
    key = store.new_key(1, "output", ".gif")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.writer(key, "image/gif") as handle:
        handle.write(random_bytes(100_000))
        raise Boom
    assert store.stat(key) is None
    with pytest.raises(FileNotFoundError):
        store.open(key)


# -- list_objects ------------------------------------------------------------------------------


def listing(store: Store) -> dict[str, int]:
    listed = list(store.list_objects())
    assert all(isinstance(entry, ListedObject) for entry in listed)
    found = {entry.key: entry.size for entry in listed}
    assert len(found) == len(listed), "no key is listed twice"
    return found


def test_list_objects_names_every_published_object_once(
    store: Store, source: Path, tmp_path: Path
) -> None:
    assert listing(store) == {}
    copied = store.new_key(1, "output", ".gif")
    store.put_file(copied, source, "image/gif")
    written = store.new_key(2, "media", ".mp4")
    with store.writer(written, "video/mp4") as handle:
        handle.write(b"x" * 1234)
    empty_file = tmp_path / "empty"
    empty_file.write_bytes(b"")
    empty = store.new_key(1, "upload", "")
    store.put_file(empty, empty_file, "application/octet-stream")
    with pytest.raises(RuntimeError), store.writer(store.new_key(1, "output", ".gif"), "image/gif"):
        raise RuntimeError("a failed write publishes nothing, so lists nothing")
    assert listing(store) == {copied: 200_000, written: 1234, empty: 0}
    for key, size in listing(store).items():
        assert len(read_all(store, key)) == size, "everything listed can be read"
    store.delete(written)
    assert listing(store) == {copied: 200_000, empty: 0}


# -- local store: files on disk ------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def finished(*keys: str) -> set[str]:
    """What the folder holds when exactly ``keys`` are published: each file and its sidecar."""
    return {name for key in keys for name in (key, key + ".meta.json")}


def test_local_layout_and_local_path(local: LocalStore, source: Path) -> None:
    key = local.new_key(1, "output", ".gif")
    local.put_file(key, source, "image/gif")
    assert files_under(local.root) == finished(key)
    path = local.local_path(key)
    assert path is not None and path == local.root / key
    assert path.read_bytes() == source.read_bytes()


def test_writer_failure_leaves_no_temp_file(local: LocalStore) -> None:
    key = local.new_key(1, "output", ".gif")
    with pytest.raises(RuntimeError), local.writer(key, "image/gif") as handle:
        handle.write(b"x" * 10_000)
        assert len(files_under(local.root)) == 1, "the hidden temp file exists meanwhile"
        raise RuntimeError("encoder crashed")
    assert files_under(local.root) == set()


def test_writer_interrupted_by_base_exception_leaves_nothing(local: LocalStore) -> None:
    key = local.new_key(1, "output", ".gif")
    with pytest.raises(KeyboardInterrupt), local.writer(key, "image/gif") as handle:
        handle.write(b"x")
        raise KeyboardInterrupt
    assert files_under(local.root) == set()


class SpyMd5:
    """Stands in for hashlib.md5 and runs ``on_update`` after each chunk the store copies."""

    def __init__(self, on_update: Callable[[int], None]) -> None:
        self._md5 = hashlib.md5()
        self._on_update = on_update
        self._calls = 0

    def update(self, data: bytes) -> None:
        self._md5.update(data)
        self._calls += 1
        self._on_update(self._calls)

    def hexdigest(self) -> str:
        return self._md5.hexdigest()


def test_put_file_never_shows_a_partial_object(
    local: LocalStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Look at the folder after every copied chunk: the object is absent until it is whole."""
    key = local.new_key(1, "output", ".gif")
    monkeypatch.setattr(local_module, "COPY_CHUNK", 16 * 1024)
    seen: list[set[str]] = []

    def observe(_calls: int) -> None:
        names = files_under(local.root)
        seen.append(names)
        assert key not in names and store_stat_is_none()
        assert all(Path(name).name.startswith(".") for name in names), names

    def store_stat_is_none() -> bool:
        return local.stat(key) is None

    monkeypatch.setattr(local_module, "_new_md5", lambda: SpyMd5(observe))
    obj = local.put_file(key, source, "image/gif")
    assert len(seen) >= 10, "the copy really was observed chunk by chunk"
    assert files_under(local.root) == finished(key)
    assert obj.md5 == md5_hex(source.read_bytes())


def test_put_file_failing_mid_copy_leaves_nothing(
    local: LocalStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = local.new_key(1, "output", ".gif")
    monkeypatch.setattr(local_module, "COPY_CHUNK", 16 * 1024)

    def fail_on_third(calls: int) -> None:
        if calls == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_module, "_new_md5", lambda: SpyMd5(fail_on_third))
    with pytest.raises(OSError, match="No space"):
        local.put_file(key, source, "image/gif")
    assert files_under(local.root) == set()
    assert local.stat(key) is None


@pytest.mark.parametrize("move", [False, True])
def test_put_file_crash_between_sidecar_and_data(
    local: LocalStore, source: Path, monkeypatch: pytest.MonkeyPatch, move: bool
) -> None:
    """The data rename fails after the sidecar landed: no object, the moved source survives."""
    data = source.read_bytes()
    key = local.new_key(1, "output", ".gif")
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if not str(dst).endswith(".meta.json"):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="Input/output"):
        local.put_file(key, source, "image/gif", move=move)
    monkeypatch.undo()
    assert local.stat(key) is None
    assert files_under(local.root) == {key + ".meta.json"}, "only the orphan sidecar is left"
    assert source.read_bytes() == data, "a failed move gives the file back"
    assert local.delete(key) is False
    assert files_under(local.root) == set(), "delete clears the orphan sidecar"


def test_put_file_move_of_a_symlink_copies_the_target(
    local: LocalStore, source: Path, tmp_path: Path
) -> None:
    link = tmp_path / "link.gif"
    link.symlink_to(source)
    key = local.new_key(1, "output", ".gif")
    local.put_file(key, link, "image/gif", move=True)
    stored = local.root / key
    assert not stored.is_symlink() and stored.read_bytes() == source.read_bytes()
    assert not link.exists() and source.exists()


def test_stat_does_not_hash(
    local: LocalStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = local.new_key(1, "output", ".gif")
    local.put_file(key, source, "image/gif")

    def no_hashing() -> Any:
        raise AssertionError("stat hashed the file")

    monkeypatch.setattr(local_module, "_new_md5", no_hashing)
    for _ in range(3):
        assert local.stat(key) is not None


def test_missing_sidecar_is_rebuilt_once(
    local: LocalStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = local.new_key(1, "output", ".webp")
    local.put_file(key, source, "image/webp")
    (local.root / (key + ".meta.json")).unlink()
    obj = local.stat(key)
    assert obj is not None
    assert (obj.md5, obj.content_type) == (md5_hex(source.read_bytes()), "image/webp")
    assert (local.root / (key + ".meta.json")).exists()
    monkeypatch.setattr(local_module, "_new_md5", lambda: pytest.fail("hashed twice"))
    assert local.stat(key) == obj


@pytest.mark.parametrize(
    ("suffix", "content_type"),
    [
        (".gif", "image/gif"),
        (".webp", "image/webp"),
        (".avif", "image/avif"),
        (".mp4", "video/mp4"),
    ],
)
def test_rebuilt_sidecar_knows_every_output_type_without_the_system_table(
    local: LocalStore,
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
    content_type: str,
) -> None:
    """``mimetypes`` reads the host's tables (/etc/mime.types): a host without them must not
    turn an output into ``application/octet-stream``."""
    key = local.new_key(1, "output", suffix)
    local.put_file(key, source, content_type)
    (local.root / (key + ".meta.json")).unlink()
    monkeypatch.setattr(local_module.mimetypes, "guess_type", lambda *_a, **_k: (None, None))
    obj = local.stat(key)
    assert obj is not None and obj.content_type == content_type


def test_stale_or_corrupt_sidecar_is_not_trusted(local: LocalStore, source: Path) -> None:
    key = local.new_key(1, "output", ".gif")
    local.put_file(key, source, "image/gif")
    path = local.root / key
    path.write_bytes(b"edited by hand")  # an operator's change: new size and mtime
    obj = local.stat(key)
    assert obj is not None and (obj.size, obj.md5) == (14, md5_hex(b"edited by hand"))
    (local.root / (key + ".meta.json")).write_bytes(b"{not json")
    again = local.stat(key)
    assert again is not None and again.md5 == md5_hex(b"edited by hand")
    assert again.content_type == "image/gif"


def test_files_by_hand_without_sidecar_are_served(local: LocalStore) -> None:
    path = local.root / "1" / "media" / "20240101" / "clip.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0\0\0\x18ftypmp42")
    obj = local.stat("1/media/20240101/clip.mp4")
    assert isinstance(obj, StoredObject) and obj.content_type == "video/mp4"


def test_symlink_out_of_the_root_is_refused(local: LocalStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret")
    folder = local.root / "1" / "output" / "20240101"
    folder.mkdir(parents=True)
    (folder / "evil.gif").symlink_to(secret)
    (local.root / "1" / "out").symlink_to(tmp_path)
    for key in ("1/output/20240101/evil.gif", "1/out/secret.txt"):
        with pytest.raises(InvalidKey):
            local.stat(key)
        with pytest.raises(InvalidKey):
            local.open(key)
        with pytest.raises(InvalidKey):
            local.local_path(key)
        with pytest.raises(InvalidKey):
            local.delete(key)
    assert secret.read_bytes() == b"top secret"


def test_symlink_loop_is_refused(local: LocalStore) -> None:
    (local.root / "loop").symlink_to(local.root / "loop")
    with pytest.raises(InvalidKey):
        local.stat("loop/x")


def test_symlink_within_the_root_is_followed_and_delete_drops_only_the_link(
    local: LocalStore, source: Path
) -> None:
    key = local.new_key(1, "output", ".gif")
    local.put_file(key, source, "image/gif")
    (local.root / "alias.gif").symlink_to(local.root / key)
    assert read_all(local, "alias.gif") == source.read_bytes()
    assert local.delete("alias.gif") is True
    assert local.stat(key) is not None


def test_final_component_swapped_for_a_symlink_is_not_followed(
    local: LocalStore, tmp_path: Path
) -> None:
    """Between the containment check and the open, the data file becomes a symlink: O_NOFOLLOW."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret")
    swapped = local.root / "swapped.gif"
    swapped.symlink_to(secret)
    with pytest.raises(FileNotFoundError):
        local_module._open_regular(swapped, "swapped.gif")


def test_list_objects_leaves_out_what_no_key_can_read(
    local: LocalStore, source: Path, tmp_path: Path
) -> None:
    key = local.new_key(1, "output", ".gif")
    local.put_file(key, source, "image/gif")
    folder = (local.root / key).parent
    (folder / ".x.gif.0123abcd.tmp").write_bytes(b"a write in progress")
    (folder / "orphan.gif.meta.json").write_bytes(b"{}")  # sidecar of a crashed publication
    (local.root / "notes with spaces.txt").write_bytes(b"an operator's file")
    (local.root / ".hidden").mkdir()
    (local.root / ".hidden" / "x.gif").write_bytes(b"hidden folder")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.gif").write_bytes(b"top secret")
    (local.root / "escape").symlink_to(outside)  # a folder link: not walked
    (folder / "evil.gif").symlink_to(outside / "secret.gif")  # a file link out of the root
    (local.root / "dangling.gif").symlink_to(local.root / "gone.gif")
    assert listing(local) == {key: 200_000}


def test_root_is_created_and_resolved(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    store = LocalStore(tmp_path / "alias" / "nested")
    assert store.root == (real / "nested").resolve()
    assert store.root.is_dir()


def test_concurrent_writers_to_distinct_keys(local: LocalStore) -> None:
    import threading

    keys = [local.new_key(1, "output", ".gif") for _ in range(16)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with local.writer(keys[i], "image/gif") as handle:
                handle.write(random_bytes(50_000, seed=i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i, key in enumerate(keys):
        assert read_all(local, key) == random_bytes(50_000, seed=i)


def test_chunks_iterator_closes_its_file(local: LocalStore, source: Path) -> None:
    key = local.new_key(1, "output", ".gif")
    local.put_file(key, source, "image/gif")
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    chunks: Iterator[bytes] = local.open(key)
    next(chunks)
    chunks.close()  # type: ignore[attr-defined]
    del chunks
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
