"""Server-side uploads end to end: ApplyUpload, the COS-compatible endpoint driven by the
official ``cos-python-sdk-v5`` (simple PUT and multipart), CommitUpload, vod-python-sdk through
the spec 6.1 shim, and the ``anigraph upload`` command."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from service_harness import Server, Vod, anigraph, error_code, free_port, wait_for_task
from upload_helpers import (
    cos_client,
    cos_config,
    cos_error,
    expire_session,
    object_key,
    padded_clip,
    sql,
    staged_files,
    tiny_png,
    vod_upload_pointed_at,
)

from media_factory import make_still_image

MiB = 1024 * 1024


def header(answer: dict[str, Any], name: str) -> str:
    """A response header from the SDK's plain-dict answer, whatever the wire casing (uvicorn's
    httptools protocol lower-cases header names)."""
    (value,) = [v for k, v in answer.items() if k.lower() == name.lower()]
    return str(value)


def put(server: Server, applied: dict[str, Any], path: Path, **overrides: Any) -> dict[str, Any]:
    with path.open("rb") as body:
        return dict(
            cos_client(server, applied, **overrides).put_object(
                Bucket=applied["StorageBucket"], Key=object_key(applied), Body=body
            )
        )


def media_count(server: Server, name: str) -> int:
    return int(sql(server, "SELECT COUNT(*) FROM media WHERE name = ?", name)[0][0])


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def create_flow(vod: Vod, name: str) -> None:
    vod(
        "CreateProcedureTemplate",
        {
            "Name": name,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": 20000, "StartTimeOffset": 0.0, "EndTimeOffset": 1.0}
                ]
            },
        },
    )


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3.5 MiB: four parts at the SDK's smallest part size (1 MiB)."""
    return padded_clip(tmp_path_factory.mktemp("upload") / "big.mp4", 3 * MiB + MiB // 2)


# --- ApplyUpload ------------------------------------------------------------------------------


def test_apply_upload_response_shape(server: Server, vod: Vod) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": "shape"})
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]", applied["StorageBucket"])
    assert applied["StorageRegion"]
    assert applied["MediaStoragePath"].startswith("/")
    assert applied["MediaStoragePath"].endswith(".mp4")
    assert applied["CoverStoragePath"] == ""
    assert len(applied["VodSessionKey"]) >= 32
    certificate = applied["TempCertificate"]
    assert certificate["SecretId"] and certificate["SecretKey"] and certificate["Token"]
    assert certificate["ExpiredTime"] > time.time() + 3600
    # The temporary key is for COS only: it cannot call the API.
    temp = Vod(server, {"SecretId": certificate["SecretId"], "SecretKey": certificate["SecretKey"]})
    assert error_code(lambda: temp("ApplyUpload", {"MediaType": "mp4"})).startswith("AuthFailure")
    # Two sessions never share keys or credentials.
    other = vod("ApplyUpload", {"MediaType": "mp4"})
    assert other["MediaStoragePath"] != applied["MediaStoragePath"]
    assert other["TempCertificate"]["SecretId"] != certificate["SecretId"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"MediaType": "exe"}, "InvalidParameterValue.MediaType"),
        ({"MediaType": "m3u8"}, "InvalidParameterValue.MediaType"),
        ({"MediaType": ""}, "InvalidParameterValue.MediaType"),
        ({"MediaType": "mp4", "CoverType": "exe"}, "InvalidParameterValue.CoverType"),
        ({"MediaType": "mp4", "ExpireTime": "tomorrow"}, "InvalidParameterValue.ExpireTime"),
        (
            {"MediaType": "mp4", "ExpireTime": "2001-01-01T00:00:00Z"},
            "InvalidParameterValue.ExpireTime",
        ),
        ({"MediaType": "mp4", "Procedure": "no-such-flow"}, "InvalidParameterValue.Procedure"),
        (
            {"MediaType": "mp4", "MediaStoragePath": "/a/b.mp4"},
            "InvalidParameterValue.MediaStoragePath",
        ),
        (
            {"MediaType": "mp4", "SessionContext": "x" * 1001},
            "InvalidParameterValue.SessionContextTooLong",
        ),
        ({"MediaType": "mp4", "ClassId": -1}, "InvalidParameterValue.ClassId"),
    ],
)
def test_apply_upload_refuses_bad_parameters(vod: Vod, params: dict[str, Any], code: str) -> None:
    assert error_code(lambda: vod("ApplyUpload", params)) == code


# --- simple PUT and commit --------------------------------------------------------------------


def test_put_object_then_commit(server: Server, vod: Vod, short_clip: Path) -> None:
    name = unique("simple")
    applied = vod(
        "ApplyUpload", {"MediaType": "mp4", "MediaName": name, "SourceContext": "from-test"}
    )
    answer = put(server, applied, short_clip)
    assert header(answer, "ETag") == f'"{hashlib.md5(short_clip.read_bytes()).hexdigest()}"'
    # Uploaded but not committed: invisible in /files and in media.
    key = object_key(applied)
    assert httpx.get(f"{server.url}/files/{key}").status_code == 404
    assert media_count(server, name) == 0

    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert set(committed) == {"FileId", "MediaUrl", "CoverUrl", "RequestId"}
    assert committed["CoverUrl"] == ""
    assert committed["MediaUrl"].endswith(f"/files/{key}")
    served = httpx.get(committed["MediaUrl"])
    assert served.status_code == 200 and served.content == short_clip.read_bytes()

    info = vod("DescribeMediaInfos", {"FileIds": [committed["FileId"]]})["MediaInfoSet"][0]
    basic = info["BasicInfo"]
    assert basic["Name"] == name
    assert basic["Type"] == "mp4"
    assert basic["StoragePath"] == applied["MediaStoragePath"]
    assert basic["SourceInfo"]["SourceType"] == "Upload"
    assert basic["SourceInfo"]["SourceContext"] == "from-test"
    assert info["MetaData"]["Width"] == 320 and info["MetaData"]["Height"] == 180
    # The staged upload was moved, not copied: nothing is left in staging.
    ((staging,),) = sql(
        server,
        "SELECT media_staging_key FROM upload_sessions WHERE vod_session_key = ?",
        applied["VodSessionKey"],
    )
    assert not (server.data_dir / "files" / staging).exists()


def test_cover_upload(server: Server, vod: Vod, short_clip: Path, tmp_path: Path) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4", "CoverType": "png"})
    assert applied["CoverStoragePath"].startswith("/")
    assert applied["CoverStoragePath"].endswith(".png")
    put(server, applied, short_clip)
    cover = tmp_path / "cover.png"
    cover.write_bytes(tiny_png())
    with cover.open("rb") as body:
        cos_client(server, applied).put_object(
            Bucket=applied["StorageBucket"], Key=applied["CoverStoragePath"][1:], Body=body
        )
    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert committed["CoverUrl"].endswith(applied["CoverStoragePath"])
    served = httpx.get(committed["CoverUrl"])
    assert served.status_code == 200 and served.content == tiny_png()
    assert served.headers["content-type"] == "image/png"
    info = vod("DescribeMediaInfos", {"FileIds": [committed["FileId"]]})["MediaInfoSet"][0]
    assert info["BasicInfo"]["CoverUrl"] == committed["CoverUrl"]
    vod("DeleteMedia", {"FileId": committed["FileId"]})
    assert httpx.get(committed["CoverUrl"]).status_code == 404


def test_head_md5_ip_mode_and_cors(server: Server, vod: Vod, short_clip: Path) -> None:
    import base64

    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    bucket, key = applied["StorageBucket"], object_key(applied)
    client = cos_client(server, applied)
    assert cos_error(lambda: client.head_object(Bucket=bucket, Key=key))[0] == 404
    data = short_clip.read_bytes()
    # Content-MD5 is checked: a wrong one stores nothing.
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert cos_error(
        lambda: client.put_object(Bucket=bucket, Key=key, Body=data, ContentMD5=wrong)
    ) == (400, "BadDigest")
    assert cos_error(lambda: client.head_object(Bucket=bucket, Key=key))[0] == 404
    client.put_object(Bucket=bucket, Key=key, Body=data, EnableMD5=True)
    head = client.head_object(Bucket=bucket, Key=key)
    assert header(head, "Content-Length") == str(len(data))
    assert header(head, "ETag") == f'"{hashlib.md5(data).hexdigest()}"'
    # IP mode: Host is the bucket's COS host name, and the signature covers it.
    port = int(server.endpoint.rsplit(":", 1)[1])
    ip_client = cos_client(server, applied, Domain=None, IP="127.0.0.1", Port=port)
    ip_client.put_object(Bucket=bucket, Key=key, Body=data)
    # CORS, for the browser upload SDK.
    preflight = httpx.options(
        f"{server.url}/{key}",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, x-cos-security-token",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert "x-cos-security-token" in preflight.headers["access-control-allow-headers"]
    vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})


# --- multipart ------------------------------------------------------------------------------


def test_upload_file_goes_multipart_in_parallel(server: Server, vod: Vod, big_clip: Path) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    client = cos_client(server, applied)
    real_upload_part = client.upload_part
    lock = threading.Lock()
    in_flight = 0
    most_in_flight = 0
    numbers: list[int] = []

    def recording_upload_part(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, most_in_flight
        with lock:
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            numbers.append(args[3] if len(args) > 3 else kwargs["PartNumber"])
        try:
            time.sleep(0.2)  # keep parts in flight together
            return real_upload_part(*args, **kwargs)
        finally:
            with lock:
                in_flight -= 1

    client.upload_part = recording_upload_part
    answer = client.upload_file(
        Bucket=applied["StorageBucket"],
        Key=object_key(applied),
        LocalFilePath=str(big_clip),
        PartSize=1,
        MAXThread=4,
    )
    assert sorted(numbers) == [1, 2, 3, 4]
    assert most_in_flight > 1
    assert re.fullmatch(r'"[0-9a-f]{32}-4"', answer["ETag"])
    # The completed upload is gone from the listing.
    listed = client.list_multipart_uploads(Bucket=applied["StorageBucket"], Prefix="")
    assert not listed.get("Upload")

    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert httpx.get(committed["MediaUrl"]).content == big_clip.read_bytes()


def test_parts_out_of_order_and_concurrent(server: Server, vod: Vod, big_clip: Path) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    client = cos_client(server, applied)
    bucket, key = applied["StorageBucket"], object_key(applied)
    data = big_clip.read_bytes()
    chunks = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    barrier = threading.Barrier(len(chunks))

    def send(number: int) -> tuple[int, str]:
        barrier.wait(timeout=30)
        answer = client.upload_part(
            Bucket=bucket, Key=key, Body=chunks[number - 1], PartNumber=number, UploadId=upload_id
        )
        return number, header(answer, "ETag")

    with ThreadPoolExecutor(len(chunks)) as pool:
        etags = dict(pool.map(send, reversed(range(1, len(chunks) + 1))))
    for number, etag in etags.items():
        assert etag == f'"{hashlib.md5(chunks[number - 1]).hexdigest()}"'

    listed = client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert listed["IsTruncated"] == "false"
    assert [(int(p["PartNumber"]), p["ETag"], int(p["Size"])) for p in listed["Part"]] == [
        (n, etags[n], len(chunks[n - 1])) for n in range(1, len(chunks) + 1)
    ]
    paged = client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=2)
    assert paged["IsTruncated"] == "true" and paged["NextPartNumberMarker"] == "2"

    parts = [{"PartNumber": n, "ETag": etags[n]} for n in range(1, len(chunks) + 1)]
    # Wrong order, unknown ETag, unknown upload: refused without side effects.
    wrong_order = {"Part": list(reversed(parts))}
    assert cos_error(
        lambda: client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=wrong_order
        )
    ) == (400, "InvalidPartOrder")
    bad_etag = {"Part": [*parts[:-1], {"PartNumber": len(parts), "ETag": '"' + "0" * 32 + '"'}]}
    assert cos_error(
        lambda: client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=bad_etag
        )
    ) == (400, "InvalidPart")
    assert cos_error(
        lambda: client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId="nope", MultipartUpload={"Part": parts}
        )
    ) == (404, "NoSuchUpload")

    done = client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Part": parts}
    )
    md5s = b"".join(hashlib.md5(chunk).digest() for chunk in chunks)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-{len(chunks)}"'
    # A completed upload takes no more parts.
    assert cos_error(
        lambda: client.upload_part(
            Bucket=bucket, Key=key, Body=b"x", PartNumber=1, UploadId=upload_id
        )
    ) == (404, "NoSuchUpload")
    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert httpx.get(committed["MediaUrl"]).content == data


def test_upload_file_resumes_an_interrupted_upload(
    server: Server, vod: Vod, big_clip: Path
) -> None:
    """``upload_file`` lists multipart uploads, lists the parts of one for its key, checks
    their ETags and sizes against the local file and sends only the missing ones."""
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    client = cos_client(server, applied)
    bucket, key = applied["StorageBucket"], object_key(applied)
    data = big_clip.read_bytes()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, Body=data[:MiB], PartNumber=1, UploadId=upload_id)
    listed = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    assert [(u["Key"], u["UploadId"]) for u in listed["Upload"]] == [(key, upload_id)]

    sent: list[int] = []
    real_upload_part = client.upload_part

    def recording_upload_part(*args: Any, **kwargs: Any) -> Any:
        sent.append(args[3] if len(args) > 3 else kwargs["PartNumber"])
        return real_upload_part(*args, **kwargs)

    client.upload_part = recording_upload_part
    client.upload_file(Bucket=bucket, Key=key, LocalFilePath=str(big_clip), PartSize=1)
    assert sorted(sent) == [2, 3, 4]
    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert httpx.get(committed["MediaUrl"]).content == data


def test_abort_multipart(server: Server, vod: Vod) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    client = cos_client(server, applied)
    bucket, key = applied["StorageBucket"], object_key(applied)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, Body=b"a" * 1000, PartNumber=1, UploadId=upload_id)
    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert not client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Upload")
    assert cos_error(lambda: client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)) == (
        404,
        "NoSuchUpload",
    )
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "ResourceNotFound"
    )


# --- what the temporary key may not do ---------------------------------------------------------


def test_temp_key_writes_only_its_own_keys(server: Server, vod: Vod, short_clip: Path) -> None:
    mine = vod("ApplyUpload", {"MediaType": "mp4"})
    theirs = vod("ApplyUpload", {"MediaType": "mp4"})
    client = cos_client(server, mine)
    for key in (object_key(theirs), f"{object_key(mine)}.other", "1500000001/media/x.mp4"):
        with short_clip.open("rb") as body:
            assert cos_error(
                lambda body=body, key=key: client.put_object(
                    Bucket=mine["StorageBucket"], Key=key, Body=body
                )
            ) == (403, "AccessDenied")
    assert cos_error(
        lambda: client.create_multipart_upload(Bucket=mine["StorageBucket"], Key=object_key(theirs))
    ) == (403, "AccessDenied")
    # Their multipart uploads are not listed with my key.
    their_client = cos_client(server, theirs)
    their_client.create_multipart_upload(Bucket=theirs["StorageBucket"], Key=object_key(theirs))
    assert not client.list_multipart_uploads(Bucket=mine["StorageBucket"], Prefix="").get("Upload")
    # Reading is not granted either.
    assert cos_error(
        lambda: client.get_object(Bucket=mine["StorageBucket"], Key=object_key(mine))
    ) == (403, "AccessDenied")


def test_temp_key_refused_with_bad_signature_or_token(
    server: Server, vod: Vod, short_clip: Path
) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    secret = applied["TempCertificate"]["SecretKey"]
    assert cos_error(lambda: put(server, applied, short_clip, SecretKey=secret + "x")) == (
        403,
        "SignatureDoesNotMatch",
    )
    assert cos_error(lambda: put(server, applied, short_clip, Token=None)) == (403, "AccessDenied")
    assert cos_error(lambda: put(server, applied, short_clip, Token="0" * 64)) == (
        403,
        "AccessDenied",
    )
    assert cos_error(lambda: put(server, applied, short_clip, SecretId="AKIDnope")) == (
        403,
        "InvalidAccessKeyId",
    )
    # Another session's token does not fit this key.
    other = vod("ApplyUpload", {"MediaType": "mp4"})
    token = other["TempCertificate"]["Token"]
    assert cos_error(lambda: put(server, applied, short_clip, Token=token)) == (
        403,
        "AccessDenied",
    )
    # Unsigned: a COS error document, not the API's JSON.
    unsigned = httpx.put(f"{server.url}/{object_key(applied)}", content=b"data")
    assert unsigned.status_code == 403
    assert unsigned.headers["content-type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in unsigned.text and "<RequestId>" in unsigned.text
    listing = httpx.get(f"{server.url}/?uploads=&prefix=")
    assert listing.status_code == 403 and "<Code>AccessDenied</Code>" in listing.text
    # Still nothing stored, and the right key still works.
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "ResourceNotFound"
    )
    put(server, applied, short_clip)
    vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})


def test_temp_key_refused_after_expiry(server: Server, vod: Vod, short_clip: Path) -> None:
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    put(server, applied, short_clip)
    expire_session(server, applied["VodSessionKey"])
    assert cos_error(lambda: put(server, applied, short_clip)) == (403, "AccessDenied")
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "InvalidParameterValue.VodSessionKey"
    )


def test_stale_signature_refused(server: Server, vod: Vod) -> None:
    """A signature whose time window has passed, or that is far longer than the SDK's."""
    import requests
    from qcloud_cos.cos_auth import CosS3Auth

    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    certificate = applied["TempCertificate"]
    config = cos_config(server, applied)
    url = f"{server.url}/{object_key(applied)}"
    headers = {"x-cos-security-token": certificate["Token"]}
    from qcloud_cos import cos_auth

    past = types.SimpleNamespace(time=lambda: time.time() - 20_000)
    stale_prepared = requests.Request("PUT", url, data=b"x", headers=headers).prepare()
    with mock.patch.object(cos_auth, "time", past):
        CosS3Auth(config, object_key(applied))(stale_prepared)
    with requests.Session() as session:
        answer = session.send(stale_prepared)
        assert answer.status_code == 403 and "<Code>AccessDenied</Code>" in answer.text
        long_prepared = requests.Request("PUT", url, data=b"x", headers=headers).prepare()
        CosS3Auth(config, object_key(applied), expire=86_400)(long_prepared)
        answer = session.send(long_prepared)
        assert answer.status_code == 403 and "<Code>AccessDenied</Code>" in answer.text


# --- CommitUpload ------------------------------------------------------------------------------


def test_commit_twice_makes_one_media(server: Server, vod: Vod, short_clip: Path) -> None:
    name = unique("twice")
    applied = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": name})
    put(server, applied, short_clip)
    vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "InvalidParameterValue.VodSessionKey"
    )
    assert media_count(server, name) == 1
    # The committed session's key writes nothing any more.
    assert cos_error(lambda: put(server, applied, short_clip)) == (403, "AccessDenied")


def test_concurrent_commits_make_one_media(server: Server, vod: Vod, short_clip: Path) -> None:
    name = unique("race")
    applied = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": name})
    put(server, applied, short_clip)
    clients = [Vod(server, server.default_key()) for _ in range(4)]

    def commit(client: Vod) -> str:
        try:
            return str(
                client("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})["FileId"]
            )
        except Exception as exc:
            return f"error:{getattr(exc, 'code', exc)}"

    with ThreadPoolExecutor(len(clients)) as pool:
        outcomes = list(pool.map(commit, clients))
    wins = [o for o in outcomes if not o.startswith("error:")]
    assert len(wins) == 1, outcomes
    assert all(
        o == "error:InvalidParameterValue.VodSessionKey" for o in outcomes if o not in wins
    ), outcomes
    assert media_count(server, name) == 1
    assert httpx.get(f"{server.url}/files/{object_key(applied)}").status_code == 200


def test_commit_refusals(server: Server, vod: Vod, short_clip: Path) -> None:
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": "no-such-session"}))
        == "InvalidParameterValue.VodSessionKey"
    )
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    # Nothing uploaded yet.
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "ResourceNotFound"
    )
    # Another sub-application cannot commit this session, and cannot tell it exists.
    stranger = Vod(server, server.create_key(1500000000 + secrets.randbelow(10**6) + 10**6))
    put(server, applied, short_clip)
    assert (
        error_code(lambda: stranger("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "InvalidParameterValue.VodSessionKey"
    )
    vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})


def test_commit_of_a_non_video(server: Server, vod: Vod, short_clip: Path, tmp_path: Path) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )

    name = unique("notvideo")
    applied = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": name})
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 1000)
    put(server, applied, junk)
    with pytest.raises(TencentCloudSDKException) as raised:
        vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert raised.value.code == "FailedOperation"
    assert "SourceFileError." in raised.value.message
    # No half state: no media, nothing published, nothing staged; the session is still open.
    assert media_count(server, name) == 0
    assert httpx.get(f"{server.url}/files/{object_key(applied)}").status_code == 404
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "ResourceNotFound"
    )
    # The same credential uploads the real file, and the commit goes through.
    put(server, applied, short_clip)
    vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert media_count(server, name) == 1


def test_commit_of_a_still_image(server: Server, vod: Vod, tmp_path: Path) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )

    name = unique("still")
    applied = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": name})  # content decides
    put(server, applied, make_still_image(tmp_path / "still.png"))
    with pytest.raises(TencentCloudSDKException) as raised:
        vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert raised.value.code == "FailedOperation"
    assert "SourceFileError.ContentUnsupported" in raised.value.message
    assert media_count(server, name) == 0


def test_commit_with_procedure_starts_a_task(server: Server, vod: Vod, short_clip: Path) -> None:
    flow = unique("upflow")
    create_flow(vod, flow)
    applied = vod(
        "ApplyUpload",
        {"MediaType": "mp4", "Procedure": flow, "SessionContext": "ctx-upload"},
    )
    put(server, applied, short_clip)
    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    tasks = vod("DescribeTasks", {"FileId": committed["FileId"]})["TaskSet"]
    assert len(tasks) == 1
    detail = wait_for_task(vod, tasks[0]["TaskId"])
    assert detail["Status"] == "FINISH"
    assert detail["ProcedureTask"]["FileId"] == committed["FileId"]
    assert detail["ProcedureTask"]["SessionContext"] == "ctx-upload"
    (result,) = detail["ProcedureTask"]["MediaProcessResultSet"]
    assert result["AnimatedGraphicTask"]["Status"] == "SUCCESS", result
    gif = httpx.get(result["AnimatedGraphicTask"]["Output"]["Url"])
    assert gif.status_code == 200 and gif.content[:6] in (b"GIF89a", b"GIF87a")


def test_commit_when_the_flow_was_deleted(server: Server, vod: Vod, short_clip: Path) -> None:
    """The flow is checked at ApplyUpload and used at CommitUpload; if it vanished in between,
    the commit is refused as a whole (no media without its task), and works once it is back."""
    flow = unique("goneflow")
    create_flow(vod, flow)
    name = unique("gone")
    applied = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": name, "Procedure": flow})
    put(server, applied, short_clip)
    vod("DeleteProcedureTemplate", {"Name": flow})
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "InvalidParameterValue.Procedure"
    )
    assert media_count(server, name) == 0
    assert httpx.get(f"{server.url}/files/{object_key(applied)}").status_code == 404
    create_flow(vod, flow)
    committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    assert httpx.get(committed["MediaUrl"]).content == short_clip.read_bytes()
    assert media_count(server, name) == 1


def test_expired_sessions_are_swept(server: Server, vod: Vod, short_clip: Path) -> None:
    """ApplyUpload sweeps sessions expired for over an hour: their staged objects and parts go,
    and so do their rows."""
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    put(server, applied, short_clip)
    client = cos_client(server, applied)
    bucket, key = applied["StorageBucket"], object_key(applied)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, Body=b"p" * 1000, PartNumber=1, UploadId=upload_id)
    staged = set(staged_files(server))
    session_key = applied["VodSessionKey"]
    mine = sql(
        server,
        "SELECT media_staging_key FROM upload_sessions WHERE vod_session_key = ?",
        session_key,
    )[0][0]
    assert any(str(path).endswith(mine) for path in staged)
    expire_session(server, session_key)
    for _ in range(10):  # each ApplyUpload sweeps a batch
        vod("ApplyUpload", {"MediaType": "mp4"})
        if not sql(server, "SELECT 1 FROM upload_sessions WHERE vod_session_key = ?", session_key):
            break
    assert not sql(server, "SELECT 1 FROM upload_sessions WHERE vod_session_key = ?", session_key)
    assert not sql(server, "SELECT 1 FROM cos_upload_parts WHERE upload_id = ?", upload_id)
    assert not any(str(path).endswith(mine) for path in staged_files(server))
    assert len(staged_files(server)) <= len(staged) - 2


def test_new_file_upload_event(server: Server, short_clip: Path) -> None:
    """With the upload switch ON (PULL mode), CommitUpload queues one NewFileUpload carrying
    the FileUploadTask, in the same transaction as the media item and the task."""
    key = server.create_key(1500000000 + secrets.randbelow(10**6) + 2 * 10**6)
    tenant = Vod(server, key)
    tenant("ModifyEventConfig", {"Mode": "PULL", "UploadMediaCompleteEventSwitch": "ON"})
    flow = unique("evflow")
    create_flow(tenant, flow)
    applied = tenant("ApplyUpload", {"MediaType": "mp4", "Procedure": flow, "MediaName": "ev"})
    put(server, applied, short_clip)
    committed = tenant("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
    events = tenant("PullEvents", {})["EventSet"]
    uploads = [e for e in events if e["EventType"] == "NewFileUpload"]
    assert len(uploads) == 1
    task = uploads[0]["FileUploadEvent"]
    assert task["FileId"] == committed["FileId"]
    assert task["ProcedureTaskId"].startswith(f"{key['SubAppId']}-")
    assert task["ReviewAudioVideoTaskId"] == ""
    assert task["MediaBasicInfo"]["Name"] == "ev"
    assert task["MediaBasicInfo"]["MediaUrl"] == committed["MediaUrl"]
    assert task["MetaData"]["Width"] == 320


# --- vod-python-sdk and the CLI -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*fileds are useless")
def test_vod_python_sdk_through_the_shim(server: Server, vod: Vod, big_clip: Path) -> None:
    from qcloud_vod.model import VodUploadRequest
    from qcloud_vod.vod_upload_client import VodUploadClient

    flow = unique("sdkflow")
    create_flow(vod, flow)
    key = server.default_key()
    request = VodUploadRequest()
    request.MediaFilePath = str(big_clip)  # 3.5 MiB: multipart, the SDK's default part size
    request.Procedure = flow
    request.SubAppId = key["SubAppId"]
    request.ConcurrentUploadNumber = 3
    with vod_upload_pointed_at(server.endpoint):
        response = VodUploadClient(key["SecretId"], key["SecretKey"]).upload(
            "ap-guangzhou", request
        )
    assert response.FileId and response.MediaUrl
    assert httpx.get(response.MediaUrl).content == big_clip.read_bytes()
    info = vod("DescribeMediaInfos", {"FileIds": [response.FileId]})["MediaInfoSet"][0]
    assert info["BasicInfo"]["Name"] == "big"  # the SDK's default: file name without extension
    tasks = vod("DescribeTasks", {"FileId": response.FileId})["TaskSet"]
    assert wait_for_task(vod, tasks[0]["TaskId"])["Status"] == "FINISH"


def test_cli_upload(server: Server, vod: Vod, short_clip: Path) -> None:
    flow = unique("cliflow")
    create_flow(vod, flow)
    key_file = server.data_dir / "default-key.json"
    done = anigraph(
        "upload",
        short_clip,
        "--endpoint",
        server.endpoint,
        "--key-file",
        key_file,
        "--procedure",
        flow,
        "--json",
    )
    result = json.loads(done.stdout)
    assert set(result) == {"FileId", "MediaUrl", "ProcedureTaskId"}
    assert httpx.get(result["MediaUrl"]).content == short_clip.read_bytes()
    assert wait_for_task(vod, result["ProcedureTaskId"])["Status"] == "FINISH"

    plain = anigraph(
        "upload", short_clip, "--endpoint", f"http://{server.endpoint}", "--key-file", key_file
    )
    assert plain.stdout.startswith("FileId: ")

    failed = anigraph(
        "upload",
        short_clip,
        "--endpoint",
        server.endpoint,
        "--key-file",
        key_file,
        "--procedure",
        "no-such-flow",
        check=False,
    )
    assert failed.returncode == 1
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "InvalidParameterValue.Procedure" in failed.stderr

    wrong_key = anigraph(
        "upload",
        short_clip,
        "--endpoint",
        server.endpoint,
        "--secret-id",
        "AKIDnope",
        "--secret-key",
        "nope",
        check=False,
    )
    assert wrong_key.returncode == 1 and "AuthFailure" in wrong_key.stderr


# --- size cap ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(
        tmp_path_factory.mktemp("capped") / "data",
        free_port(),
        extra=["--max-upload-bytes", str(300_000), "--workers", "0"],
    )
    running.start()
    yield running
    running.stop()


def test_size_cap(capped_server: Server, tmp_path: Path) -> None:
    import requests
    from qcloud_cos.cos_auth import CosS3Auth

    vod = Vod(capped_server, capped_server.default_key())
    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    bucket, key = applied["StorageBucket"], object_key(applied)
    client = cos_client(capped_server, applied)
    large = tmp_path / "large.mp4"
    large.write_bytes(b"\0" * 400_000)
    # Declared too large: refused before reading.
    assert cos_error(lambda: put(capped_server, applied, large)) == (400, "EntityTooLarge")

    # Not declared (chunked): cut off once the cap is passed.
    certificate = applied["TempCertificate"]
    config = cos_config(capped_server, applied)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\0" * 10_000

    prepared = requests.Request(
        "PUT",
        f"{capped_server.url}/{key}",
        data=chunks(),
        headers={"x-cos-security-token": certificate["Token"]},
    ).prepare()
    assert "Content-Length" not in prepared.headers
    CosS3Auth(config, key)(prepared)
    with requests.Session() as session:
        answer = session.send(prepared)
    assert answer.status_code == 400 and "<Code>EntityTooLarge</Code>" in answer.text

    # Multipart: parts that together pass the cap.
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(
        Bucket=bucket, Key=key, Body=b"\0" * 200_000, PartNumber=1, UploadId=upload_id
    )
    assert cos_error(
        lambda: client.upload_part(
            Bucket=bucket, Key=key, Body=b"\0" * 200_000, PartNumber=2, UploadId=upload_id
        )
    ) == (400, "EntityTooLarge")
    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    # Nothing was stored.
    assert staged_files(capped_server) == []
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "ResourceNotFound"
    )


def test_client_gone_mid_upload_leaves_nothing(server: Server, vod: Vod) -> None:
    """A body cut short (Content-Length lies, or the client dies) publishes nothing and leaves
    no temporary file behind."""
    import socket

    import requests
    from qcloud_cos.cos_auth import CosS3Auth

    applied = vod("ApplyUpload", {"MediaType": "mp4"})
    certificate = applied["TempCertificate"]
    config = cos_config(server, applied)
    key = object_key(applied)
    prepared = requests.Request(
        "PUT",
        f"{server.url}/{key}",
        data=b"\0" * MiB,
        headers={"x-cos-security-token": certificate["Token"]},
    ).prepare()
    CosS3Auth(config, key)(prepared)
    host, port = server.endpoint.rsplit(":", 1)
    head = f"PUT /{key} HTTP/1.1\r\nHost: {server.endpoint}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in prepared.headers.items()
    )
    before = set(staged_files(server))
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head.encode() + b"\r\n" + b"\0" * (MiB // 4))
        time.sleep(0.3)
        assert set(staged_files(server)) - before  # the temporary file, being written
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(staged_files(server)) - before:
        time.sleep(0.1)
    assert set(staged_files(server)) - before == set()
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert (
        error_code(lambda: vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]}))
        == "ResourceNotFound"
    )


def test_never_redirects(server: Server) -> None:
    for method, path in (
        ("PUT", "/1500000001"),
        ("PUT", "/1500000001/"),
        ("PUT", "/1500000001/media/x.mp4/"),
        ("GET", "/1500000001/media/x.mp4?uploadId=1"),
        ("POST", "/1500000001/media/x.mp4?uploads"),
    ):
        answer = httpx.request(method, f"{server.url}{path}", content=b"")
        assert 400 <= answer.status_code < 500, (method, path, answer.status_code)
        assert "<Error>" in answer.text


def test_api_still_answers_at_root(server: Server) -> None:
    """The COS routes share ``/`` with the API only for ``?uploads``: a GET-signed API call
    (flattened query at ``/``) still reaches the API."""
    get_vod = Vod(server, server.default_key(), req_method="GET")
    assert get_vod("DescribeAnimatedGraphicsTemplates", {})["TotalCount"] >= 2


def test_resume_extends_an_open_session(tmp_path: Path) -> None:
    """``uploads.resume`` (for the browser SDK's resume/renew): same keys and credential, a
    later expiry, capped by the session's maximum age; refused once committed or expired."""
    from datetime import UTC, datetime, timedelta

    from anigraph.api.upload_errors import api_error
    from anigraph.server import open_context
    from anigraph.services import keys, uploads
    from anigraph.settings import Settings

    ctx = open_context(Settings(data_dir=tmp_path / "data"))
    now = datetime(2030, 1, 1, tzinfo=UTC)
    ctx.clock = lambda: now
    keys.ensure_sub_app(ctx, 1500000001)
    applied = uploads.apply(ctx, 1500000001, uploads.UploadRequest(media_type="mp4"))
    first = applied["TempCertificate"]["ExpiredTime"]

    now += timedelta(hours=5)
    resumed = uploads.resume(ctx, 1500000001, applied["VodSessionKey"])
    assert resumed["TempCertificate"]["ExpiredTime"] > first
    assert {k: v for k, v in resumed.items() if k != "TempCertificate"} == {
        k: v for k, v in applied.items() if k != "TempCertificate"
    }
    assert resumed["TempCertificate"]["SecretId"] == applied["TempCertificate"]["SecretId"]

    cap = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=uploads.MAX_SESSION_SECONDS)
    while now + timedelta(hours=5) < cap:  # keep renewing: the session's age caps it
        now += timedelta(hours=5)
        last = uploads.resume(ctx, 1500000001, applied["VodSessionKey"])
    assert last["TempCertificate"]["ExpiredTime"] == int(cap.timestamp())
    now = cap + timedelta(seconds=1)
    with pytest.raises(uploads.UploadError) as raised:
        uploads.resume(ctx, 1500000001, applied["VodSessionKey"])
    assert api_error(raised.value).code == "InvalidParameterValue.VodSessionKey"
    with pytest.raises(uploads.UploadError):
        uploads.resume(ctx, 1500000002, applied["VodSessionKey"])
    ctx.db.dispose()
