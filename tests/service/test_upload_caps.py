"""Uploads over ``max_upload_bytes`` through the COS object endpoint (reliability checklist M17).

Refused early when ``Content-Length`` says so, mid-stream when it does not (chunked) or lies
(chunked with a small ``Content-Length``), for simple PUTs and multipart parts, driven by the
official ``cos-python-sdk-v5`` where it is the client and by raw requests where only a raw
client can send such a body. Whatever the way, nothing is left behind: no object in the store,
no staging file, no half multipart upload, and the session can still take a proper upload.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_harness import Server, Vod, error_code, free_port
from upload_helpers import cos_client, cos_config, cos_error, object_key, padded_clip, sql

MiB = 1024 * 1024
CAP = 2 * MiB + MiB // 2
"""Room for two 1 MiB parts (the SDK's part size) and half of a third."""


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(
        tmp_path_factory.mktemp("caps") / "data",
        free_port(),
        extra=["--max-upload-bytes", str(CAP), "--workers", "0"],
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def vod(capped: Server) -> Vod:
    return Vod(capped, capped.default_key())


def store_files(server: Server) -> set[Path]:
    """Every file in the store but the sidecars: objects, staged uploads, parts, temp files."""
    root = server.data_dir / "files"
    return {
        path for path in root.rglob("*") if path.is_file() and not path.name.endswith(".meta.json")
    }


def multipart_rows(server: Server, applied: dict[str, Any]) -> tuple[int, int]:
    """(multipart uploads that still take parts, parts of any) recorded for the session; an
    upload ended as oversized is kept, empty, until the client aborts it or the sweep runs."""
    session_key = applied["VodSessionKey"]
    uploads = sql(
        server,
        "SELECT COUNT(*) FROM cos_multipart_uploads WHERE vod_session_key = ? "
        "AND state != 'oversized'",
        session_key,
    )[0][0]
    parts = sql(
        server,
        "SELECT COUNT(*) FROM cos_upload_parts WHERE upload_id IN "
        "(SELECT upload_id FROM cos_multipart_uploads WHERE vod_session_key = ?)",
        session_key,
    )[0][0]
    return int(uploads), int(parts)


def assert_nothing_left(
    server: Server, vod: Vod, applied: dict[str, Any], before: set[Path]
) -> None:
    """Nothing new in the store since ``before``, no staging file, no multipart upload or part
    of the session, nothing to commit."""
    deadline = time.monotonic() + 10  # a cut-off stream is cleaned up when the server sees it
    while time.monotonic() < deadline and store_files(server) - before:
        time.sleep(0.1)
    assert store_files(server) - before == set()
    assert list((server.data_dir / "staging").glob("*")) == []
    assert multipart_rows(server, applied) == (0, 0)
    client = cos_client(server, applied)
    listed = client.list_multipart_uploads(Bucket=applied["StorageBucket"], Prefix="")
    assert not listed.get("Upload")
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "ResourceNotFound"
    )


def signed_headers(
    server: Server, applied: dict[str, Any], method: str, params: dict[str, str] | None = None
) -> dict[str, str]:
    """The headers the SDK's own signer (``CosS3Auth``) puts on a request to the session's key,
    for a body whose length it is not told (raw clients send it as they please)."""
    import requests
    from qcloud_cos.cos_auth import CosS3Auth

    certificate = applied["TempCertificate"]
    config = cos_config(server, applied)
    key = object_key(applied)
    prepared = requests.Request(
        method,
        f"{server.url}/{key}",
        params=params or {},
        data=iter([b""]),  # a stream: signed without a Content-Length
        headers={"x-cos-security-token": certificate["Token"]},
    ).prepare()
    CosS3Auth(config, key, params=params or {})(prepared)
    return {
        name: value
        for name, value in prepared.headers.items()
        if name.lower() not in ("content-length", "transfer-encoding")
    }


def zeros(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(chunk, total - sent)
        sent += piece
        yield b"\0" * piece


def raw_request(server: Server, head: str, body: Iterator[bytes]) -> bytes:
    """Send a hand-framed request; the answer's bytes (the server may answer, and close, before
    the body is all sent)."""
    host, port = server.endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head.encode("latin-1"))
        try:
            for piece in body:
                connection.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
                if b"</Error>" in answer:
                    break
        except ConnectionResetError:
            pass
    return answer


def chunked(body: Iterator[bytes]) -> Iterator[bytes]:
    for piece in body:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


# --- simple PUT --------------------------------------------------------------------------------


def test_sdk_put_object_over_the_cap_is_refused_before_the_body(
    capped: Server, vod: Vod, tmp_path: Path
) -> None:
    """``put_object`` sends ``Content-Length``: refused at once, the body never read (64 MiB
    would take a while to stream), and the SDK gets COS's own error, not a broken connection."""
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    before = store_files(capped)
    large = tmp_path / "large.mp4"
    with large.open("wb") as out:
        out.truncate(64 * MiB)
    client = cos_client(capped, applied)
    began = time.monotonic()
    with large.open("rb") as body:
        refused = cos_error(
            lambda: client.put_object(
                Bucket=applied["StorageBucket"], Key=object_key(applied), Body=body
            )
        )
    assert refused == (400, "EntityTooLarge")
    assert time.monotonic() - began < 20
    assert_nothing_left(capped, vod, applied, before)


def test_chunked_put_over_the_cap_is_cut_off_mid_stream(capped: Server, vod: Vod) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    before = store_files(capped)
    answer = httpx.put(
        f"{capped.url}/{object_key(applied)}",
        content=zeros(CAP + MiB),
        headers=signed_headers(capped, applied, "PUT"),
        timeout=30,
    )
    assert answer.status_code == 400 and "<Code>EntityTooLarge</Code>" in answer.text
    assert_nothing_left(capped, vod, applied, before)


def test_a_lying_content_length_does_not_let_a_larger_body_in(capped: Server, vod: Vod) -> None:
    """A small ``Content-Length`` on a chunked body that goes on past it (and past the cap):
    the chunked framing wins in the HTTP server, so the body would be read on up to the cap;
    such a request is refused outright instead."""
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    before = store_files(capped)
    headers = signed_headers(capped, applied, "PUT")
    head = (
        f"PUT /{object_key(applied)} HTTP/1.1\r\nHost: {capped.endpoint}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        + "Content-Length: 1000\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer = raw_request(capped, head, chunked(zeros(CAP + MiB)))
    # Refused for its framing before any of the body is read, not at the cap.
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"<Code>InvalidRequest</Code>" in answer and b"Transfer-Encoding" in answer
    assert_nothing_left(capped, vod, applied, before)
    assert httpx.get(f"{capped.url}/healthz").status_code == 200


# --- multipart ---------------------------------------------------------------------------------


def test_sdk_upload_file_over_the_cap_leaves_no_half_multipart_upload(
    capped: Server, vod: Vod, tmp_path: Path
) -> None:
    """``upload_file`` of a file larger than the cap: its parts go up concurrently until one
    would pass the cap; that refusal ends the multipart upload (it can never complete), so the
    parts already received are dropped at once instead of lingering until the session's sweep."""
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    before = store_files(capped)
    large = padded_clip(tmp_path / "large.mp4", 3 * MiB + 1000)
    client = cos_client(capped, applied)
    with pytest.raises(Exception, match=r"EntityTooLarge|upload_part fail"):
        client.upload_file(
            Bucket=applied["StorageBucket"],
            Key=object_key(applied),
            LocalFilePath=str(large),
            PartSize=1,
            MAXThread=3,
        )
    assert_nothing_left(capped, vod, applied, before)

    # The session still takes an upload within the cap, multipart too.
    small = padded_clip(tmp_path / "small.mp4", 2 * MiB + 1000)
    client.upload_file(
        Bucket=applied["StorageBucket"],
        Key=object_key(applied),
        LocalFilePath=str(small),
        PartSize=1,
        MAXThread=3,
    )
    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert committed["FileId"]


@pytest.mark.parametrize("mode", ["declared", "chunked"])
def test_a_part_over_the_cap_ends_its_multipart_upload(capped: Server, vod: Vod, mode: str) -> None:
    """A part whose declared length passes what the cap leaves is refused before its body; a
    chunked one is cut off mid-stream. Either way the multipart upload is over and nothing of
    it is left; the SDK's own abort afterwards still succeeds."""
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    before = store_files(capped)
    client = cos_client(capped, applied)
    where = {"Bucket": applied["StorageBucket"], "Key": object_key(applied)}
    upload_id = client.create_multipart_upload(**where)["UploadId"]
    client.upload_part(Body=b"\1" * (2 * MiB), PartNumber=1, UploadId=upload_id, **where)
    if mode == "declared":
        refused = cos_error(
            lambda: client.upload_part(Body=b"\2" * MiB, PartNumber=2, UploadId=upload_id, **where)
        )
        assert refused == (400, "EntityTooLarge")
    else:
        params = {"partNumber": "2", "uploadId": upload_id}
        answer = httpx.put(
            f"{capped.url}/{object_key(applied)}",
            params=params,
            content=zeros(MiB),
            headers=signed_headers(capped, applied, "PUT", params),
            timeout=30,
        )
        assert answer.status_code == 400 and "<Code>EntityTooLarge</Code>" in answer.text
    assert cos_error(lambda: client.list_parts(UploadId=upload_id, **where)) == (
        404,
        "NoSuchUpload",
    )
    client.abort_multipart_upload(UploadId=upload_id, **where)
    assert_nothing_left(capped, vod, applied, before)
