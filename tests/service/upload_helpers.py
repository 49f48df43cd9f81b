"""Helpers for the upload tests: COS clients on a session's credential, padded clips, the
vod-python-sdk shim (spec 6.1), and direct database edits for expiry."""

from __future__ import annotations

import functools
import os
import sqlite3
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from service_harness import Server

from media_factory import make_clip


def cos_client(server: Server, applied: dict[str, Any], **overrides: Any) -> Any:
    """``CosS3Client`` exactly as a user points it at anigraph: ``Domain`` + ``Scheme="http"``
    and ApplyUpload's TempCertificate (``overrides`` replace any ``CosConfig`` argument)."""
    from qcloud_cos import CosS3Client

    return CosS3Client(cos_config(server, applied, **overrides))


def cos_config(server: Server, applied: dict[str, Any], **overrides: Any) -> Any:
    """The ``CosConfig`` of :func:`cos_client` (also what ``CosS3Auth`` signs raw requests with)."""
    from qcloud_cos import CosConfig

    certificate = applied["TempCertificate"]
    options: dict[str, Any] = {
        "Region": applied["StorageRegion"],
        "SecretId": certificate["SecretId"],
        "SecretKey": certificate["SecretKey"],
        "Token": certificate["Token"],
        "Scheme": "http",
        "Domain": server.endpoint,
        "Timeout": 60,
    }
    options.update(overrides)
    return CosConfig(**options)


def cos_error(call: Any) -> tuple[int, str]:
    """Run ``call``; return the (HTTP status, COS error code) of the CosServiceError it raised."""
    from qcloud_cos.cos_exception import CosServiceError

    try:
        call()
    except CosServiceError as exc:
        return int(exc.get_status_code()), str(exc.get_error_code())
    raise AssertionError("the call succeeded")


def object_key(applied: dict[str, Any]) -> str:
    """The COS key: MediaStoragePath without its leading ``/`` (what vod-python-sdk does)."""
    path = str(applied["MediaStoragePath"])
    assert path.startswith("/")
    return path[1:]


def padded_clip(path: Path, size: int) -> Path:
    """A playable MP4 of exactly ``size`` bytes: a short clip followed by a ``free`` box of
    random bytes (ignored by demuxers), so multipart tests get several real parts cheaply."""
    make_clip(path, seconds=2.0, fps=25, width=320, height=180)
    clip = path.read_bytes()
    pad = size - len(clip)
    assert pad > 8, "the clip is already larger than the wanted size"
    path.write_bytes(clip + pad.to_bytes(4, "big") + b"free" + os.urandom(pad - 8))
    return path


def staged_files(server: Server) -> list[Path]:
    """Regular files under the store's ``upload`` folders (staged objects and parts)."""
    root = server.data_dir / "files"
    return [
        path
        for path in root.glob("*/upload/**/*")
        if path.is_file() and not path.name.endswith(".meta.json")
    ]


def sql(server: Server, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the server's SQLite database (WAL mode: safe beside the server)."""
    with sqlite3.connect(server.data_dir / "anigraph.db", timeout=30) as connection:
        return list(connection.execute(statement, params))


def expire_session(server: Server, vod_session_key: str) -> None:
    """Make a session's credential expired, as if six hours had passed."""
    sql(
        server,
        "UPDATE upload_sessions SET expires_at = '2000-01-01 00:00:00.000000' "
        "WHERE vod_session_key = ?",
        vod_session_key,
    )


@contextmanager
def vod_upload_pointed_at(endpoint: str, scheme: str = "http") -> Iterator[None]:
    """The two-name shim that points vod-python-sdk (``qcloud_vod``) at anigraph (spec 6.1).

    ``VodUploadClient`` builds ``vod_client.VodClient(cred, region)`` and ``CosConfig(Region=...,
    SecretId=..., ...)`` with no way to pass an endpoint, looking both names up in its own
    module; replacing those two names is enough. The README form sets them once for good; this
    one restores them afterwards.
    """
    from qcloud_cos import CosConfig
    from qcloud_vod import vod_upload_client
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.vod.v20180717 import vod_client

    def local_vod_client(credential: Any, region: str, profile: Any = None) -> Any:
        http = HttpProfile(endpoint=endpoint, protocol=scheme)
        return vod_client.VodClient(credential, region, ClientProfile(httpProfile=http))

    shim = types.SimpleNamespace(VodClient=local_vod_client)
    cos_config = functools.partial(CosConfig, Scheme=scheme, Domain=endpoint)
    with (
        mock.patch.object(vod_upload_client, "vod_client", shim),
        mock.patch.object(vod_upload_client, "CosConfig", cos_config),
    ):
        yield


def tiny_png() -> bytes:
    """A valid 1x1 PNG, as a cover image."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
