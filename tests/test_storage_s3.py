"""What only the S3 store promises, against moto's server on loopback (``storage_fixtures``).

The shared Store contract runs over S3 in ``test_storage.py``; here: multipart uploads above
the threshold, where metadata lives, objects written by other tools, prefixes, failures, and
``parse_store_url``.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from anigraph.storage import InvalidKey, LocalStore
from anigraph.storage.factory import local_store_path, parse_store_url
from anigraph.storage.s3 import S3Store

if TYPE_CHECKING:
    from storage_fixtures import S3Server

pytest_plugins = ["storage_fixtures"]

MIB = 1024 * 1024


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "out.gif"
    path.write_bytes(random.Random(5).randbytes(100_000))
    return path


def raw_head(store: S3Store, key: str) -> Any:
    return store.client.head_object(Bucket=store.bucket, Key=store.prefix + key)


def test_large_file_goes_multipart_and_keeps_its_md5(
    s3_server: S3Server, s3_prefix: str, tmp_path: Path
) -> None:
    # 5 MiB is S3's (and moto's) minimum part size; 11 MiB makes three parts.
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    store = S3Store(
        s3_server.bucket, prefix=s3_prefix, client=s3_server.client(), transfer_config=config
    )
    data = random.Random(1).randbytes(11 * MIB)
    big = tmp_path / "big.mp4"
    big.write_bytes(data)
    key = store.new_key(1, "media", ".mp4")
    obj = store.put_file(key, big, "video/mp4", move=True)
    etag = raw_head(store, key)["ETag"]
    assert etag.strip('"').endswith("-3"), f"not a 3-part multipart upload: {etag}"
    assert obj.md5 == md5_hex(data) and obj.etag == f'"{md5_hex(data)}"'
    assert obj.size == len(data) and not big.exists()
    assert store.stat(key) == obj
    assert b"".join(store.open(key, 5 * MIB - 10, 5 * MIB + 9)) == data[5 * MIB - 10 : 5 * MIB + 10]


def test_metadata_round_trip_in_one_head(s3_store: S3Store, source: Path) -> None:
    key = s3_store.new_key(1, "media", ".mp4")
    content_type = 'video/mp4; codecs="avc1.42E01E"'
    obj = s3_store.put_file(key, source, content_type)
    head = raw_head(s3_store, key)
    assert head["Metadata"] == {"md5": md5_hex(source.read_bytes()), "content-type": content_type}
    assert head["ContentType"] == content_type, "served as-is by presigned URLs or a CDN too"
    calls: list[str] = []
    s3_store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    assert s3_store.stat(key) == obj
    assert calls == ["HeadObject"], "stat is exactly one request"


def test_objects_live_under_the_prefix(s3_store: S3Store, source: Path) -> None:
    key = s3_store.new_key(1, "output", ".gif")
    s3_store.put_file(key, source, "image/gif")
    listed = s3_store.client.list_objects_v2(Bucket=s3_store.bucket, Prefix=s3_store.prefix)
    assert [item["Key"] for item in listed.get("Contents", [])] == [s3_store.prefix + key]
    assert s3_store.prefix.endswith("/") and not s3_store.prefix.startswith("/")


def test_object_uploaded_by_another_tool_is_hashed_once(s3_store: S3Store) -> None:
    key = "1/media/20240101/clip.mp4"
    data = b"\0\0\0\x18ftypmp42" * 1000
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=s3_store.prefix + key, Body=data, ContentType="video/mp4"
    )
    obj = s3_store.stat(key)
    assert obj is not None
    assert (obj.md5, obj.size, obj.content_type) == (md5_hex(data), len(data), "video/mp4")
    assert raw_head(s3_store, key)["Metadata"]["md5"] == md5_hex(data), "metadata was written"
    calls: list[str] = []
    s3_store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    assert s3_store.stat(key) == obj
    assert calls == ["HeadObject"]


def test_listing_stays_under_the_prefix_and_skips_foreign_names(
    s3_server: S3Server, s3_prefix: str, source: Path
) -> None:
    store = S3Store(s3_server.bucket, prefix=f"{s3_prefix}/a", client=s3_server.client())
    neighbour = S3Store(s3_server.bucket, prefix=f"{s3_prefix}/ab", client=s3_server.client())
    key = store.new_key(1, "output", ".gif")
    store.put_file(key, source, "image/gif")
    neighbour.put_file(neighbour.new_key(1, "output", ".gif"), source, "image/gif")
    store.client.put_object(Bucket=store.bucket, Key=f"{s3_prefix}/a/notes with spaces.txt")
    store.client.put_object(Bucket=store.bucket, Key=f"{s3_prefix}/a/x.gif.meta.json")
    assert [(entry.key, entry.size) for entry in store.list_objects()] == [(key, 100_000)]


def test_listing_follows_pages(s3_server: S3Server, s3_prefix: str) -> None:
    store = S3Store(s3_server.bucket, prefix=s3_prefix, client=s3_server.client())
    made = set()
    for i in range(7):
        key = store.new_key(1, "media", "")
        store.client.put_object(Bucket=store.bucket, Key=store.prefix + key, Body=b"x" * i)
        made.add((key, i))
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=store.prefix, PaginationConfig={"PageSize": 3}
    )
    assert sum(1 for _ in pages) == 3, "the server really pages at 3"
    original = store.client.get_paginator

    def small_pages(name: str) -> Any:
        paginator = original(name)  # type: ignore[call-overload]
        paginate = paginator.paginate
        paginator.paginate = lambda **kw: paginate(**kw, PaginationConfig={"PageSize": 3})
        return paginator

    store.client.get_paginator = small_pages  # type: ignore[method-assign]
    assert {(entry.key, entry.size) for entry in store.list_objects()} == made


def test_local_path_is_none_even_for_existing_objects(s3_store: S3Store, source: Path) -> None:
    key = s3_store.new_key(1, "output", ".gif")
    s3_store.put_file(key, source, "image/gif")
    assert s3_store.local_path(key) is None


def test_presigned_url_names_the_prefixed_object_and_caps_the_expiry(
    s3_store: S3Store, source: Path
) -> None:
    key = s3_store.new_key(1, "output", ".gif")
    url = s3_store.presigned_url(key, 604800)  # signing needs no object: nothing is sent
    assert f"/{s3_store.bucket}/{s3_store.prefix}{key}?" in url
    with pytest.raises(ValueError, match="expires"):
        s3_store.presigned_url(key, 604801)  # S3 refuses SigV4 links over 7 days


def test_clients_made_from_a_store_url_presign_with_sigv4(
    s3_server: S3Server, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.credentials.items():
        monkeypatch.setenv(name, value)
    store = parse_store_url(
        f"s3://{s3_server.bucket}/{s3_prefix}?endpoint_url={s3_server.endpoint_url}&region=eu-west-1"
    )
    url = store.presigned_url(store.new_key(1, "output", ".gif"), 60)
    assert url is not None
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=60" in url
    assert "%2Feu-west-1%2Fs3%2Faws4_request" in url  # the credential scope names the region


def test_writer_leaves_no_spool_file(s3_server: S3Server, s3_prefix: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    store = S3Store(s3_server.bucket, prefix=s3_prefix, client=s3_server.client(), spool_dir=spool)
    key = store.new_key(1, "output", ".gif")
    with pytest.raises(RuntimeError), store.writer(key, "image/gif") as handle:
        handle.write(b"x" * 10_000)
        assert len(list(spool.iterdir())) == 1, "spooled locally meanwhile"
        raise RuntimeError("encoder crashed")
    assert list(spool.iterdir()) == [] and store.stat(key) is None
    with store.writer(key, "image/gif") as handle:
        handle.write(b"GIF89a")
    assert list(spool.iterdir()) == []
    obj = store.stat(key)
    assert obj is not None and obj.md5 == md5_hex(b"GIF89a")


def test_failed_upload_keeps_a_moved_source(s3_server: S3Server, source: Path) -> None:
    store = S3Store("no-such-bucket", client=s3_server.client())
    data = source.read_bytes()
    with pytest.raises(Exception, match=r"NoSuchBucket|does not exist"):
        store.put_file(store.new_key(1, "output", ".gif"), source, "image/gif", move=True)
    assert source.read_bytes() == data


def test_missing_bucket_is_an_error_not_a_missing_object(s3_server: S3Server) -> None:
    store = S3Store("no-such-bucket", client=s3_server.client())
    with pytest.raises(ClientError):
        store.open(store.new_key(1, "output", ".gif"))


def test_bad_prefix_is_refused(s3_server: S3Server) -> None:
    for prefix in ("../x", "a//b", "a b"):
        with pytest.raises(InvalidKey):
            S3Store("b", prefix=prefix, client=s3_server.client())


# -- parse_store_url -----------------------------------------------------------------------------


def test_parse_local(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a"), f"local://{tmp_path / 'b'}"):
        store = parse_store_url(url)
        assert isinstance(store, LocalStore) and store.root.name == url[-1]


def test_local_store_path_creates_nothing(tmp_path: Path) -> None:
    assert local_store_path(str(tmp_path / "a")) == tmp_path / "a"
    assert local_store_path(f"local://{tmp_path / 'b'}") == tmp_path / "b"
    assert local_store_path("s3://bucket?region=x") is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown store scheme"):
        local_store_path("ftp://host/x")


def test_parse_s3_and_use_it(
    s3_server: S3Server, s3_prefix: str, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials come from the standard environment variables, never from the URL."""
    for name, value in s3_server.credentials.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    url = (
        f"s3://{s3_server.bucket}?endpoint_url={s3_server.endpoint_url}"
        f"&region={s3_server.region}&prefix={s3_prefix}/deploy"
    )
    store = parse_store_url(url)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == (s3_server.bucket, f"{s3_prefix}/deploy/")
    assert store.client.meta.region_name == s3_server.region
    key = store.new_key(1, "output", ".gif")
    assert store.put_file(key, source, "image/gif").md5 == md5_hex(source.read_bytes())
    assert b"".join(store.open(key)) == source.read_bytes()


def test_parse_s3_synonyms_and_path_prefix() -> None:
    store = parse_store_url("s3://bkt/some/prefix?endpoint=http://127.0.0.1:9&region=eu-west-1")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.endpoint_url) == (
        "bkt",
        "some/prefix/",
        "http://127.0.0.1:9",
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "s3://",
        "s3://?region=x",
        "s3://key:secret@bucket",
        "s3://bucket?endpont_url=http://x",
        "s3://bucket?region=a&region=b",
        "s3://bucket?region=",
        "s3://bucket?endpoint_url=ftp://x",
        "s3://bucket/a?prefix=b",
        "s3://bucket?prefix=../x",
        "gs://bucket",
        "local://host/path",
        "local://",
    ],
)
def test_parse_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        parse_store_url(url)


def test_missing_moto_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import storage_fixtures

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        storage_fixtures._unavailable("no moto")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        storage_fixtures._unavailable("no moto")
