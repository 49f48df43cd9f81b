"""Uploads from a client holding only a signature: ``/v3/index.php`` driven the way
``vod-js-sdk-v6``'s ``uploader.ts`` drives it, the object put to the COS endpoint with the
temporary credentials (cos-python-sdk-v5 configured as cos-js-sdk would be), the signed task
flow run to the end; and, where Node is available, the real JS uploader against the server."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_harness import Server, Vod, wait_for_task

from anigraph.services.upload_signature import sign

URL_PATH = "/v3/index.php"
GIF_ITEM = {"Definition": 20000, "StartTimeOffset": 0.0, "EndTimeOffset": 1.0}


def ugc(server: Server, action: str, body: Any, **kwargs: Any) -> dict[str, Any]:
    """One UGC call as the SDK makes it (axios: JSON body); every answer is HTTP 200 JSON."""
    response = httpx.post(
        f"{server.url}{URL_PATH}", params={"Action": action}, json=body, timeout=30, **kwargs
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


def signature(key: dict[str, Any], **options: Any) -> str:
    options.setdefault("expire_seconds", 3600)
    return sign(key["SecretId"], key["SecretKey"], **options)


def apply_body(sig: str, clip: Path, **extra: Any) -> dict[str, Any]:
    """What ``applyUploadUGC`` sends for a video without a cover."""
    return {
        "signature": sig,
        "videoName": clip.stem,
        "videoType": clip.suffix[1:],
        "videoSize": clip.stat().st_size,
        "uploadFromWeb": True,
        **extra,
    }


@pytest.fixture(scope="module")
def procedure(vod: Vod) -> str:
    name = f"ugc-{secrets.token_hex(4)}"
    vod(
        "CreateProcedureTemplate",
        {"Name": name, "MediaProcessTask": {"AnimatedGraphicTaskSet": [GIF_ITEM]}},
    )
    return name


def upload_object(data: dict[str, Any], endpoint: str, clip: Path) -> None:
    """Step 2 of uploader.ts, with the values cos-js-sdk gets: bucket ``storageBucket-
    storageAppId``, region ``storageRegionV5``, key ``video.storagePath``, temporary key."""
    from qcloud_cos import CosConfig, CosS3Client

    certificate = data["tempCertificate"]
    config = CosConfig(
        Region=data["storageRegionV5"],
        SecretId=certificate["secretId"],
        SecretKey=certificate["secretKey"],
        Token=certificate["token"],
        Domain=endpoint,
        Scheme="http",
    )
    client = CosS3Client(config)
    client.upload_file(
        Bucket=f"{data['storageBucket']}-{data['storageAppId']}",
        Key=data["video"]["storagePath"],
        LocalFilePath=str(clip),
    )


# --- the whole flow -------------------------------------------------------------------------


def test_signed_upload_runs_the_signed_flow(
    server: Server, vod: Vod, procedure: str, short_clip: Path
) -> None:
    key = server.default_key()
    sig = signature(
        key,
        procedure=procedure,
        session_context="from-the-app-server",
        source_context="user-42",
        task_priority=3,
    )
    applied = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))
    assert (applied["code"], applied["message"]) == (0, ""), applied
    data = applied["data"]
    assert data["video"]["storagePath"].startswith("/")
    # cos-js-sdk refuses any other bucket shape ("Bucket should format as test-1250000000").
    assert re.fullmatch(r"[a-z\d-]+-\d+", f"{data['storageBucket']}-{data['storageAppId']}")
    assert data["storageRegionV5"] == data["StorageRegionV5"]
    assert data["tempCertificate"]["expiredTime"] > data["timestamp"] >= int(time.time()) - 60
    # cos-js-sdk signs the whole timestamp..expiredTime span; the COS endpoint takes <= 10060 s.
    assert data["tempCertificate"]["expiredTime"] - data["timestamp"] <= 10_000
    assert data["vodSessionKey"] and "cover" not in data

    upload_object(data, server.endpoint, short_clip)
    committed = ugc(
        server, "CommitUploadUGC", {"signature": sig, "vodSessionKey": data["vodSessionKey"]}
    )
    assert committed["code"] == 0, committed
    result = committed["data"]
    assert result["fileId"] and result["video"]["url"].startswith("http")
    assert httpx.get(result["video"]["url"], timeout=10).content == short_clip.read_bytes()

    task_id = result["procedureTaskId"]
    assert task_id
    detail = wait_for_task(vod, task_id, timeout=120)
    assert detail["Status"] == "FINISH", detail
    task = detail["ProcedureTask"]
    assert task["FileId"] == result["fileId"]
    assert task["SessionContext"] == "from-the-app-server"
    (item,) = task["MediaProcessResultSet"]
    animated = item["AnimatedGraphicTask"]
    assert (animated["Status"], animated["ErrCode"]) == ("SUCCESS", 0), item

    media = vod("DescribeMediaInfos", {"FileIds": [result["fileId"]]})["MediaInfoSet"][0]
    assert media["BasicInfo"]["SourceInfo"]["SourceContext"] == "user-42"


def test_video_with_cover(server: Server, short_clip: Path, tmp_path: Path) -> None:
    """``coverName``/``coverType`` as the SDK sends them with a cover file: a second key to
    upload to, and ``cover.url`` in the commit answer."""
    from PIL import Image

    cover = tmp_path / "cover.png"
    Image.new("RGB", (32, 18), (200, 30, 30)).save(cover)
    sig = signature(server.default_key())
    body = apply_body(
        sig, short_clip, coverName="cover", coverType="png", coverSize=cover.stat().st_size
    )
    data = ugc(server, "ApplyUploadUGC", body)["data"]
    assert data["cover"]["storagePath"].startswith("/")
    upload_object(data, server.endpoint, short_clip)
    upload_object({**data, "video": data["cover"]}, server.endpoint, cover)
    committed = ugc(
        server, "CommitUploadUGC", {"signature": sig, "vodSessionKey": data["vodSessionKey"]}
    )
    assert committed["code"] == 0, committed
    assert httpx.get(committed["data"]["cover"]["url"], timeout=10).content == cover.read_bytes()


def test_commit_is_refused_twice_and_for_unknown_sessions(server: Server, short_clip: Path) -> None:
    key = server.default_key()
    sig = signature(key)
    data = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))["data"]
    upload_object(data, server.endpoint, short_clip)
    body = {"signature": sig, "vodSessionKey": data["vodSessionKey"]}
    assert ugc(server, "CommitUploadUGC", body)["code"] == 0
    again = ugc(server, "CommitUploadUGC", body)
    assert again["code"] != 0 and again["data"] is None
    unknown = ugc(server, "CommitUploadUGC", {"signature": sig, "vodSessionKey": "nope"})
    assert unknown["code"] == 32004, unknown


def test_session_of_another_sub_app_cannot_be_committed(server: Server, short_clip: Path) -> None:
    mine = server.default_key()
    other = server.create_key(1_800_000_000 + secrets.randbelow(10**8))
    data = ugc(server, "ApplyUploadUGC", apply_body(signature(mine), short_clip))["data"]
    stolen = ugc(
        server,
        "CommitUploadUGC",
        {"signature": signature(other), "vodSessionKey": data["vodSessionKey"]},
    )
    assert stolen["code"] == 32004, stolen


def test_resume_continues_the_same_session(server: Server, short_clip: Path) -> None:
    """What the SDK sends after a page reload, and to renew its COS credential: the session comes
    back (fresh timestamp), and the upload and commit go on with it."""
    key = server.default_key()
    first = ugc(server, "ApplyUploadUGC", apply_body(signature(key), short_clip))["data"]
    resumed = ugc(
        server,
        "ApplyUploadUGC",
        {
            "signature": signature(key),
            "vodSessionKey": first["vodSessionKey"],
            "uploadFromWeb": True,
        },
    )
    assert resumed["code"] == 0, resumed
    again = resumed["data"]
    assert again["vodSessionKey"] == first["vodSessionKey"]
    assert again["video"]["storagePath"] == first["video"]["storagePath"]
    assert again["tempCertificate"]["secretId"] == first["tempCertificate"]["secretId"]
    assert again["timestamp"] >= first["timestamp"]
    upload_object(again, server.endpoint, short_clip)
    body = {"signature": signature(key), "vodSessionKey": first["vodSessionKey"]}
    assert ugc(server, "CommitUploadUGC", body)["code"] == 0
    late = ugc(server, "ApplyUploadUGC", {"signature": signature(key), **body})
    assert late["code"] == 32004, late


def test_resume_needs_the_sessions_sub_app(server: Server, short_clip: Path) -> None:
    mine = server.default_key()
    other = server.create_key(1_800_000_000 + secrets.randbelow(10**8))
    data = ugc(server, "ApplyUploadUGC", apply_body(signature(mine), short_clip))["data"]
    body = {"signature": signature(other), "vodSessionKey": data["vodSessionKey"]}
    assert ugc(server, "ApplyUploadUGC", body)["code"] == 32004


def test_body_cannot_choose_the_flow(server: Server, short_clip: Path) -> None:
    """The flow is the app server's decision: a ``procedure`` in the body is not used."""
    key = server.default_key()
    sig = signature(key)
    applied = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip, procedure="no-such-flow"))
    assert applied["code"] == 0, applied
    upload_object(applied["data"], server.endpoint, short_clip)
    body = {"signature": sig, "vodSessionKey": applied["data"]["vodSessionKey"]}
    assert ugc(server, "CommitUploadUGC", body)["data"]["procedureTaskId"] == ""


def test_unknown_signed_flow_is_refused(server: Server, short_clip: Path) -> None:
    sig = signature(server.default_key(), procedure="no-such-flow")
    refused = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))
    assert refused["code"] == 32005 and refused["data"] is None, refused


# --- signature refusals ---------------------------------------------------------------------


def test_one_time_signature_is_refused_on_second_apply(server: Server, short_clip: Path) -> None:
    sig = signature(server.default_key(), one_time=True)
    assert ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))["code"] == 0
    second = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))
    assert (second["code"], second["codeDesc"], second["data"]) == (31007, "ONE_TIME_USED", None)


def test_one_time_signature_under_concurrent_applies(server: Server, short_clip: Path) -> None:
    sig = signature(server.default_key(), one_time=True)
    start = threading.Barrier(6)
    codes: list[int] = []

    def attempt() -> None:
        start.wait()
        codes.append(ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))["code"])

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(codes) == [0] + [31007] * 5


def test_one_time_signature_may_still_commit(server: Server, short_clip: Path) -> None:
    """One-time limits ApplyUploadUGC; the SDK may send the same signature with the commit."""
    sig = signature(server.default_key(), one_time=True)
    data = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))["data"]
    upload_object(data, server.endpoint, short_clip)
    body = {"signature": sig, "vodSessionKey": data["vodSessionKey"]}
    assert ugc(server, "CommitUploadUGC", body)["code"] == 0


def test_expired_signature_is_refused(server: Server, short_clip: Path) -> None:
    sig = signature(server.default_key(), expire_seconds=3600, now=int(time.time()) - 7200)
    refused = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip))
    assert (refused["code"], refused["codeDesc"]) == (31004, "SIGNATURE_EXPIRED"), refused


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda key: sign(key["SecretId"], "wrong", expire_seconds=60), 31002),
        (lambda key: sign("AKIDunknown", key["SecretKey"], expire_seconds=60), 31003),
        (lambda key: "%%%not base64", 31001),
        (
            lambda key: sign(key["SecretId"], key["SecretKey"], expire_seconds=60, sub_app_id=7),
            31008,
        ),
    ],
)
def test_bad_signatures_are_refused(server: Server, short_clip: Path, make: Any, code: int) -> None:
    body = apply_body(make(server.default_key()), short_clip)
    refused = ugc(server, "ApplyUploadUGC", body)
    assert (refused["code"], refused["data"]) == (code, None), refused
    assert refused["message"]


# --- protocol -------------------------------------------------------------------------------


def test_request_errors(server: Server, short_clip: Path) -> None:
    sig = signature(server.default_key())
    assert ugc(server, "NoSuchAction", {"signature": sig})["code"] == 32003
    assert ugc(server, "ApplyUploadUGC", [1, 2])["code"] == 32001
    assert ugc(server, "ApplyUploadUGC", {"videoType": "mp4"})["code"] == 32001
    assert ugc(server, "ApplyUploadUGC", {"signature": sig})["code"] == 32001
    assert ugc(server, "ApplyUploadUGC", {"signature": sig, "videoType": 4})["code"] == 32001
    not_json = httpx.post(
        f"{server.url}{URL_PATH}?Action=ApplyUploadUGC", content=b"{nope", timeout=10
    ).json()
    assert not_json["code"] == 32001
    huge = ugc(server, "ApplyUploadUGC", apply_body(sig, short_clip, videoName="x" * 70_000))
    assert huge["code"] == 32002


def test_prepare_offers_no_region_race(server: Server) -> None:
    answer = ugc(server, "PrepareUploadUGC", {"signature": signature(server.default_key())})
    assert answer["code"] == 0 and answer["data"]["cosRegionList"] == []


def test_cors(server: Server) -> None:
    origin = "https://app.example"
    preflight = httpx.options(
        f"{server.url}{URL_PATH}?Action=ApplyUploadUGC",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"].lower() == "content-type"
    answer = httpx.post(
        f"{server.url}{URL_PATH}?Action=PrepareUploadUGC",
        json={"signature": "x"},
        headers={"Origin": origin},
        timeout=10,
    )
    assert answer.headers["access-control-allow-origin"] == origin
    assert "Origin" in answer.headers["vary"]


# --- the real web SDK in Node ---------------------------------------------------------------

NODE_DRIVER = r"""
// Runs vod-js-sdk-v6's uploader against anigraph. Two redirections stand in for DNS and TLS:
// the SDK's axios instance is sent to anigraph instead of vod2.qcloud.com, and a small
// XMLHttpRequest (Node has none; cos-js-sdk-v5 needs one) sends *.myqcloud.com requests there.
const [sdkRoot, baseUrl, videoPath, signature] = process.argv.slice(1);
// Errors thrown inside the minified cos-js-sdk bundle would print a 190 KB source line.
const brief = (error) => String((error && error.stack) || JSON.stringify(error)).slice(0, 2000);
process.on("uncaughtException", (error) => { console.error(brief(error)); process.exit(1); });
const fs = require("fs");
const { vodAxios } = require(sdkRoot + "/lib/src/uploader.js");
const TcVod = require(sdkRoot + "/lib/src/tc_vod.js").default;

vodAxios.interceptors.request.use((config) => {
  config.url = config.url.replace(/^https:\/\/vod2\.(qcloud|dnsv1)\.com/, baseUrl);
  return config;
});

class FakeXMLHttpRequest {
  constructor() { this.upload = {}; this.headers = {}; this.status = 0; this.timeout = 0; }
  open(method, url) {
    this.method = method;
    this.url = url.replace(/^https?:\/\/[^/]*\.myqcloud\.com/, baseUrl);
  }
  setRequestHeader(name, value) { this.headers[name] = value; }
  getAllResponseHeaders() { return this.rawHeaders || ""; }
  abort() {}
  send(body) {
    const init = { method: this.method, headers: this.headers };
    if (this.method !== "GET" && this.method !== "HEAD") init.body = body === undefined ? "" : body;
    fetch(this.url, init).then(async (res) => {
      this.status = res.status;
      this.statusText = res.statusText;
      const lines = [];
      res.headers.forEach((value, name) => lines.push(name + ": " + value));
      this.rawHeaders = lines.join("\r\n");
      this.responseText = this.response = await res.text();
      if (this.upload.onprogress) this.upload.onprogress({ loaded: 1, total: 1 });
      this.onload && this.onload();
    }).catch((err) => { this.statusText = String(err); this.onerror && this.onerror(err); });
  }
}
globalThis.XMLHttpRequest = FakeXMLHttpRequest;
// cos-js-sdk parses XML with its bundled xmldom, but only once it sees a browser's DOMParser.
globalThis.window = { DOMParser: function DOMParser() {} };

const file = new File([fs.readFileSync(videoPath)], "clip.mp4", { type: "video/mp4" });
const tcVod = new TcVod({
  getSignature: async () => signature, allowReport: false, enableResume: false,
});
const uploader = tcVod.upload({ mediaFile: file });
uploader.done().then(
  (result) => { process.stdout.write(JSON.stringify(result)); },
  (error) => { console.error("upload failed", brief(error)); process.exit(1); },
);
"""


@pytest.fixture(scope="module")
def vod_js_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vod-js-sdk-v6 installed from the npm registry (skips without node/npm or network)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the real web SDK")
    folder = tmp_path_factory.mktemp("vodjs")
    try:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "vod-js-sdk-v6@1.8.0"],
            cwd=folder,
            capture_output=True,
            timeout=180,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"cannot install vod-js-sdk-v6: {exc}")
    return folder / "node_modules" / "vod-js-sdk-v6"


def test_real_web_sdk_uploads(
    server: Server, vod: Vod, procedure: str, short_clip: Path, vod_js_sdk: Path
) -> None:
    sig = signature(server.default_key(), procedure=procedure)
    done = subprocess.run(
        ["node", "-e", NODE_DRIVER, str(vod_js_sdk), server.url, str(short_clip), sig],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["fileId"] and result["video"]["url"]
    detail = wait_for_task(vod, result["procedureTaskId"], timeout=120)
    (item,) = detail["ProcedureTask"]["MediaProcessResultSet"]
    assert item["AnimatedGraphicTask"]["Status"] == "SUCCESS", item
