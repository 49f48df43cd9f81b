"""Client upload signatures (spec 6.6): signing, every refusal, one-time use under concurrency,
signatures made the way Tencent's documented samples make them, and the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import click
import pytest
from click.testing import CliRunner

from anigraph.cli.upload_signature import register
from anigraph.context import Context
from anigraph.db.models_upload_signatures import UploadSignatureUse
from anigraph.server import open_context
from anigraph.services import keys
from anigraph.services.upload_signature import (
    MAX_LIFETIME_SECONDS,
    RANDOM_MAX,
    SignedUpload,
    UgcCode,
    UploadSignatureError,
    one_time_claim,
    record_one_time_use,
    sign,
    verify,
)
from anigraph.settings import Settings

NOW = 1_750_000_000
OTHER_SUB_APP = 1500000777


class Clock:
    """A settable clock so expiry is tested without sleeping."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def ctx(tmp_path: Path, clock: Clock) -> Iterator[Context]:
    context = open_context(Settings(data_dir=tmp_path / "data"))
    context.clock = clock
    yield context
    context.db.dispose()


@pytest.fixture
def key(ctx: Context) -> keys.KeyPair:
    return keys.create_key(ctx)


def refused(ctx: Context, signature: str) -> UgcCode:
    with pytest.raises(UploadSignatureError) as caught:
        verify(ctx, signature)
    return caught.value.code


def raw_signature(secret_key: str, plaintext: str) -> str:
    """The documented construction, for plaintexts ``sign`` would never produce."""
    data = plaintext.encode()
    return base64.b64encode(
        hmac.new(secret_key.encode(), data, hashlib.sha1).digest() + data
    ).decode()


def fields(key: keys.KeyPair, current: int = NOW, expire: int = NOW + 3600, **extra: str) -> str:
    text = f"secretId={key.secret_id}&currentTimeStamp={current}&expireTime={expire}&random=42"
    return text + "".join(f"&{name}={value}" for name, value in extra.items())


# --- signing and reading back ---------------------------------------------------------------


def test_roundtrip_defaults(ctx: Context, key: keys.KeyPair) -> None:
    signed = verify(ctx, sign(key.secret_id, key.secret_key, expire_seconds=600, now=NOW, random=7))
    assert signed == SignedUpload(
        secret_id=key.secret_id,
        sub_app_id=key.sub_app_id,
        current_time_stamp=NOW,
        expire_time=NOW + 600,
        random=7,
        fingerprint=signed.fingerprint,
    )
    assert len(signed.fingerprint) == 64
    assert signed.task_notify_mode == "Finish" and not signed.one_time and signed.procedure == ""


def test_roundtrip_every_option(ctx: Context, key: keys.KeyPair) -> None:
    signature = sign(
        key.secret_id,
        key.secret_key,
        expire_seconds=MAX_LIFETIME_SECONDS,
        procedure="gif flow",
        one_time=True,
        sub_app_id=key.sub_app_id,
        class_id=12,
        task_priority=-10,
        task_notify_mode="Change",
        source_context="src & more = ü",
        session_context="x" * 1000,
        storage_region="ap-guangzhou",
        now=NOW,
    )
    signed = verify(ctx, signature)
    assert (signed.procedure, signed.class_id, signed.task_priority) == ("gif flow", 12, -10)
    assert signed.task_notify_mode == "Change" and signed.one_time
    assert signed.source_context == "src & more = ü"
    assert signed.session_context == "x" * 1000
    assert signed.storage_region == "ap-guangzhou"
    assert signed.expire_time - signed.current_time_stamp == MAX_LIFETIME_SECONDS


def test_plaintext_is_a_url_query_with_the_documented_names(key: keys.KeyPair) -> None:
    signature = sign(key.secret_id, key.secret_key, expire_seconds=60, procedure="a b", now=NOW)
    plaintext = base64.b64decode(signature)[20:].decode()
    assert plaintext.startswith(f"secretId={key.secret_id}&currentTimeStamp={NOW}&")
    assert f"expireTime={NOW + 60}&" in plaintext and "procedure=a%20b" in plaintext


@pytest.mark.parametrize("seconds", [0, -1, MAX_LIFETIME_SECONDS + 1])
def test_sign_refuses_bad_lifetimes(key: keys.KeyPair, seconds: int) -> None:
    with pytest.raises(ValueError):
        sign(key.secret_id, key.secret_key, expire_seconds=seconds)


def test_whitespace_in_the_base64_is_tolerated(ctx: Context, key: keys.KeyPair) -> None:
    signature = sign(key.secret_id, key.secret_key, expire_seconds=600, now=NOW)
    wrapped = "\n".join(signature[i : i + 76] for i in range(0, len(signature), 76))
    assert verify(ctx, wrapped).fingerprint == verify(ctx, signature).fingerprint


# --- signatures made by Tencent's documented sample code ------------------------------------


def tencent_python_sample(secret_id: str, secret_key: str, procedure: str, now: int) -> str:
    """Tencent's Python sample as the documentation describes it: the fields are concatenated as
    they are (no percent-encoding), then ``base64(HMAC-SHA1 digest + plaintext)``."""
    current = now
    expire = current + 86400
    rand = 1234567
    original = (
        "secretId=" + secret_id + "&currentTimeStamp=" + str(current) + "&expireTime="
        + str(expire) + "&random=" + str(rand) + "&procedure=" + procedure
    )  # fmt: skip
    digest = hmac.new(bytes(secret_key, "utf-8"), bytes(original, "utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest + bytes(original, "utf-8")).decode()


def test_tencent_python_sample_verifies(ctx: Context, key: keys.KeyPair) -> None:
    signed = verify(ctx, tencent_python_sample(key.secret_id, key.secret_key, "MyFlow", NOW))
    assert signed.procedure == "MyFlow" and signed.random == 1234567
    assert signed.expire_time == NOW + 86400


def test_node_style_encoding_verifies(ctx: Context, key: keys.KeyPair) -> None:
    """Node's ``querystring.stringify`` escapes everything but ``A-Za-z0-9-_.!~*'()``."""
    context = "a b&c=d/é!"
    plaintext = fields(key, sourceContext=quote(context, safe="-_.!~*'()"), oneTimeValid="1")
    signed = verify(ctx, raw_signature(key.secret_key, plaintext))
    assert signed.source_context == context and signed.one_time


NODE_SAMPLE = r"""
const querystring = require("querystring");
const crypto = require("crypto");
const [secretId, secretKey, now] = process.argv.slice(1);
const current = parseInt(now, 10);
const argList = {
  secretId: secretId,
  currentTimeStamp: current,
  expireTime: current + 86400,
  random: Math.round(Math.random() * Math.pow(2, 32)),
  procedure: "My Flow",
  sessionContext: "ctx & more",
  oneTimeValid: 1,
};
const original = querystring.stringify(argList);
const originalBuffer = Buffer.from(original, "utf8");
const hmacBuffer = crypto.createHmac("sha1", secretKey).update(originalBuffer).digest();
process.stdout.write(Buffer.concat([hmacBuffer, originalBuffer]).toString("base64"));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_tencent_node_sample_verifies(ctx: Context, key: keys.KeyPair) -> None:
    done = subprocess.run(
        ["node", "-e", NODE_SAMPLE, key.secret_id, key.secret_key, str(NOW)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    signed = verify(ctx, done.stdout)
    assert signed.procedure == "My Flow" and signed.session_context == "ctx & more"
    assert signed.one_time and 0 <= signed.random <= RANDOM_MAX


# --- refusals -------------------------------------------------------------------------------


def test_tampered_digest_is_refused(ctx: Context, key: keys.KeyPair) -> None:
    raw = bytearray(
        base64.b64decode(sign(key.secret_id, key.secret_key, expire_seconds=60, now=NOW))
    )
    raw[3] ^= 0x01
    assert refused(ctx, base64.b64encode(bytes(raw)).decode()) is UgcCode.SIGNATURE_MISMATCH


def test_tampered_fields_are_refused(ctx: Context, key: keys.KeyPair) -> None:
    raw = base64.b64decode(
        sign(key.secret_id, key.secret_key, expire_seconds=60, procedure="cheap", now=NOW)
    )
    swapped = raw.replace(b"procedure=cheap", b"procedure=dear!")
    assert refused(ctx, base64.b64encode(swapped).decode()) is UgcCode.SIGNATURE_MISMATCH
    extended = raw + b"&oneTimeValid=0"
    assert refused(ctx, base64.b64encode(extended).decode()) is UgcCode.SIGNATURE_MISMATCH


def test_signature_with_another_key_is_refused(ctx: Context, key: keys.KeyPair) -> None:
    signature = sign(key.secret_id, "not-the-key", expire_seconds=60, now=NOW)
    assert refused(ctx, signature) is UgcCode.SIGNATURE_MISMATCH


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "not base64 at all!",
        base64.b64encode(b"x" * 20).decode(),
        "A" * 20_000,
        base64.b64encode(b"\x00" * 20 + b"\xff\xfe not utf-8").decode(),
        base64.b64encode(b"\x00" * 20 + b"no-equals-sign").decode(),
    ],
)
def test_malformed_signatures_are_refused(ctx: Context, signature: str) -> None:
    assert refused(ctx, signature) is UgcCode.SIGNATURE_MALFORMED


def test_missing_secret_id_is_malformed(ctx: Context, key: keys.KeyPair) -> None:
    plaintext = f"currentTimeStamp={NOW}&expireTime={NOW + 60}&random=1"
    assert refused(ctx, raw_signature(key.secret_key, plaintext)) is UgcCode.SIGNATURE_MALFORMED


@pytest.mark.parametrize(
    "plaintext",
    [
        "secretId={id}&expireTime=1750000060&random=1",
        "secretId={id}&currentTimeStamp=soon&expireTime=1750000060&random=1",
        "secretId={id}&currentTimeStamp=1750000000&expireTime=1750000060",
        "secretId={id}&currentTimeStamp=1750000000&expireTime=1750000060&random=-1",
        "secretId={id}&currentTimeStamp=1750000000&expireTime=1750000060&random=4294967297",
        "secretId={id}&currentTimeStamp=1750000000&expireTime=1750000060&random=1&random=2",
    ],
)
def test_bad_required_fields_are_malformed(ctx: Context, key: keys.KeyPair, plaintext: str) -> None:
    signature = raw_signature(key.secret_key, plaintext.format(id=key.secret_id))
    assert refused(ctx, signature) is UgcCode.SIGNATURE_MALFORMED


def test_random_may_reach_two_to_the_32(ctx: Context, key: keys.KeyPair) -> None:
    plaintext = fields(key).replace("random=42", f"random={RANDOM_MAX}")
    assert verify(ctx, raw_signature(key.secret_key, plaintext)).random == RANDOM_MAX


def test_expired_signature_is_refused(ctx: Context, key: keys.KeyPair, clock: Clock) -> None:
    signature = sign(key.secret_id, key.secret_key, expire_seconds=60, now=NOW)
    clock.now = NOW + 59
    verify(ctx, signature)
    clock.now = NOW + 60
    assert refused(ctx, signature) is UgcCode.SIGNATURE_EXPIRED


def test_lifetime_over_ninety_days_is_refused(ctx: Context, key: keys.KeyPair) -> None:
    longest = raw_signature(key.secret_key, fields(key, expire=NOW + MAX_LIFETIME_SECONDS))
    assert verify(ctx, longest).expire_time == NOW + MAX_LIFETIME_SECONDS
    too_long = raw_signature(key.secret_key, fields(key, expire=NOW + MAX_LIFETIME_SECONDS + 1))
    assert refused(ctx, too_long) is UgcCode.LIFETIME_INVALID


def test_expiry_before_issue_is_refused(ctx: Context, key: keys.KeyPair) -> None:
    backwards = raw_signature(key.secret_key, fields(key, current=NOW + 200, expire=NOW + 100))
    assert refused(ctx, backwards) is UgcCode.LIFETIME_INVALID


def test_timestamp_in_the_future(ctx: Context, key: keys.KeyPair) -> None:
    slightly = raw_signature(key.secret_key, fields(key, current=NOW + 299, expire=NOW + 999))
    assert verify(ctx, slightly).current_time_stamp == NOW + 299
    far = raw_signature(key.secret_key, fields(key, current=NOW + 301, expire=NOW + 999))
    assert refused(ctx, far) is UgcCode.TIMESTAMP_IN_FUTURE


def test_unknown_and_revoked_keys_are_refused(ctx: Context, key: keys.KeyPair) -> None:
    assert refused(ctx, sign("AKIDnobody", "k", expire_seconds=60, now=NOW)) is (
        UgcCode.SECRET_ID_UNKNOWN
    )
    signature = sign(key.secret_id, key.secret_key, expire_seconds=60, now=NOW)
    verify(ctx, signature)
    assert keys.revoke_key(ctx, key.secret_id)
    assert refused(ctx, signature) is UgcCode.SECRET_ID_UNKNOWN


def test_sub_app_must_be_the_keys(ctx: Context, key: keys.KeyPair) -> None:
    def with_sub_app(sub_app_id: int) -> str:
        return sign(
            key.secret_id, key.secret_key, expire_seconds=60, now=NOW, sub_app_id=sub_app_id
        )

    assert verify(ctx, with_sub_app(0)).sub_app_id == key.sub_app_id
    assert verify(ctx, with_sub_app(key.sub_app_id)).sub_app_id == key.sub_app_id
    assert refused(ctx, with_sub_app(OTHER_SUB_APP)) is UgcCode.SUB_APP_MISMATCH
    other = keys.create_key(ctx, OTHER_SUB_APP)
    signed = verify(ctx, sign(other.secret_id, other.secret_key, expire_seconds=60, now=NOW))
    assert signed.sub_app_id == OTHER_SUB_APP


@pytest.mark.parametrize(
    ("extra", "ok"),
    [
        ({"sourceContext": "s" * 250}, True),
        ({"sourceContext": "s" * 251}, False),
        ({"sessionContext": "s" * 1000}, True),
        ({"sessionContext": "s" * 1001}, False),
        ({"taskPriority": "10"}, True),
        ({"taskPriority": "-10"}, True),
        ({"taskPriority": "11"}, False),
        ({"taskPriority": "-11"}, False),
        ({"taskPriority": "high"}, False),
        ({"taskNotifyMode": "None"}, True),
        ({"taskNotifyMode": "finish"}, False),
        ({"oneTimeValid": "2"}, False),
        ({"classId": "-1"}, False),
        ({"storageRegion": "ap-guangzhou"}, True),
        ({"storageRegion": "../etc"}, False),
        ({"procedure": "p" * 65}, False),
        ({"someFutureField": "ignored"}, True),
    ],
)
def test_field_limits(ctx: Context, key: keys.KeyPair, extra: dict[str, str], ok: bool) -> None:
    signature = raw_signature(key.secret_key, fields(key, **extra))
    if ok:
        verify(ctx, signature)
    else:
        assert refused(ctx, signature) is UgcCode.FIELD_INVALID


# --- one-time use ---------------------------------------------------------------------------


def test_one_time_signature_is_spent_once(ctx: Context, key: keys.KeyPair) -> None:
    signed = verify(
        ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, one_time=True, now=NOW)
    )
    with ctx.db.session() as session:
        record_one_time_use(session, signed, ctx.now())
    with pytest.raises(UploadSignatureError) as caught, ctx.db.session() as session:
        record_one_time_use(session, signed, ctx.now())
    assert caught.value.code is UgcCode.ONE_TIME_USED


def test_reusable_signature_leaves_no_row(ctx: Context, key: keys.KeyPair) -> None:
    signed = verify(ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, now=NOW))
    for _ in range(3):
        with ctx.db.session() as session:
            record_one_time_use(session, signed, ctx.now())
    with ctx.db.session() as session:
        assert session.query(UploadSignatureUse).count() == 0


def test_failed_transaction_does_not_spend(ctx: Context, key: keys.KeyPair) -> None:
    signed = verify(
        ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, one_time=True, now=NOW)
    )
    with pytest.raises(RuntimeError), ctx.db.session() as session:
        record_one_time_use(session, signed, ctx.now())
        raise RuntimeError("the upload it authorised failed")
    with ctx.db.session() as session:
        record_one_time_use(session, signed, ctx.now())


def test_concurrent_use_in_transactions_lets_one_through(ctx: Context, key: keys.KeyPair) -> None:
    """Each thread spends the signature and then does slow work in the same transaction."""
    signed = verify(
        ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, one_time=True, now=NOW)
    )
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt() -> None:
        start.wait()
        try:
            with ctx.db.session() as session:
                record_one_time_use(session, signed, ctx.now())
                time.sleep(0.05)
            outcomes.append("ok")
        except UploadSignatureError as exc:
            outcomes.append(exc.code.name)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["ONE_TIME_USED"] * 7 + ["ok"]


def test_concurrent_claims_let_one_through(ctx: Context, key: keys.KeyPair) -> None:
    signed = verify(
        ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, one_time=True, now=NOW)
    )
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt() -> None:
        start.wait()
        try:
            with one_time_claim(ctx, signed):
                time.sleep(0.05)
            outcomes.append("ok")
        except UploadSignatureError as exc:
            outcomes.append(exc.code.name)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["ONE_TIME_USED"] * 7 + ["ok"]


def test_claim_is_withdrawn_when_the_work_fails(ctx: Context, key: keys.KeyPair) -> None:
    signed = verify(
        ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, one_time=True, now=NOW)
    )
    with pytest.raises(RuntimeError), one_time_claim(ctx, signed):
        raise RuntimeError("apply failed")
    with one_time_claim(ctx, signed):
        pass
    with pytest.raises(UploadSignatureError), one_time_claim(ctx, signed):
        pass


def test_expired_rows_are_purged(ctx: Context, key: keys.KeyPair, clock: Clock) -> None:
    first = verify(
        ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, one_time=True, now=NOW)
    )
    with ctx.db.session() as session:
        record_one_time_use(session, first, ctx.now())
    clock.now = NOW + 120
    second = verify(
        ctx, sign(key.secret_id, key.secret_key, expire_seconds=60, one_time=True, now=NOW + 120)
    )
    with ctx.db.session() as session:
        record_one_time_use(session, second, ctx.now())
    with ctx.db.session() as session:
        assert [row.fingerprint for row in session.query(UploadSignatureUse)] == [
            second.fingerprint
        ]
        assert session.get(UploadSignatureUse, second.fingerprint).expires_at == (  # type: ignore[union-attr]
            datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=180)
        )


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def app() -> None:
        pass

    register(app)
    return app


def test_cli_signs_with_the_data_folder_key(
    cli: click.Group, ctx: Context, key: keys.KeyPair, tmp_path: Path, clock: Clock
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "default-key.json").write_text(json.dumps(key.to_dict()))
    done = CliRunner().invoke(
        cli,
        ["upload-signature", "--data-dir", str(folder), "--procedure", "Flow", "--one-time",
         "--expire-seconds", "120", "--sub-app-id", str(key.sub_app_id)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    clock.now = int(time.time())
    signed = verify(ctx, done.output.strip())
    assert signed.procedure == "Flow" and signed.one_time
    assert signed.expire_time - signed.current_time_stamp == 120


def test_cli_key_sources(cli: click.Group, ctx: Context, key: keys.KeyPair, tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.to_dict()))
    runner = CliRunner()
    by_file = runner.invoke(cli, ["upload-signature", "--key-file", str(key_file)])
    by_flags = runner.invoke(
        cli, ["upload-signature", "--secret-id", key.secret_id, "--secret-key", key.secret_key]
    )
    by_env = runner.invoke(
        cli,
        ["upload-signature", "--secret-id", key.secret_id],
        env={"ANIGRAPH_SECRET_KEY": key.secret_key},
    )
    for done in (by_file, by_flags, by_env):
        assert done.exit_code == 0, done.output
        raw = base64.b64decode(done.output.strip())
        assert raw[20:].startswith(f"secretId={key.secret_id}&".encode())


@pytest.mark.parametrize(
    "args",
    [
        ["--expire-seconds", str(MAX_LIFETIME_SECONDS + 1)],
        ["--secret-id", "AKID"],
        ["--secret-id", "AKID", "--secret-key", "k", "--key-file", "x.json"],
        ["--key-file", "/nonexistent/key.json"],
        ["--task-priority", "11"],
        ["--source-context", "s" * 251],
    ],
)
def test_cli_usage_errors(cli: click.Group, args: list[str]) -> None:
    done = CliRunner().invoke(cli, ["upload-signature", *args], env={"ANIGRAPH_SECRET_KEY": ""})
    assert done.exit_code == 2, done.output
