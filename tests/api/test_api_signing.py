"""Signature verification against requests captured from the official Tencent SDK (spec 1.2-1.5)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sdk_capture import SECRET_ID, SECRET_KEY, Captured, SdkCall
from tencentcloud.common.sign import Sign

from anigraph.api.errors import ApiError, Code
from anigraph.api.params import FLOAT, INT64, STRING, UINT64, Array, Field, Object, parse
from anigraph.api.signing import (
    MAX_FIELDS,
    Verified,
    verify_request,
    verify_tc3,
    verify_v1,
)

LOOKUP = {SECRET_ID: SECRET_KEY}.get

MODES = [
    ("TC3-HMAC-SHA256", "POST"),
    ("TC3-HMAC-SHA256", "GET"),
    ("HmacSHA1", "GET"),
    ("HmacSHA1", "POST"),
    ("HmacSHA256", "GET"),
    ("HmacSHA256", "POST"),
]
MODE_IDS = [f"{sign}-{method}" for sign, method in MODES]

CREATE_SCHEMA = Object(
    {
        "Fps": Field(UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_FPS, maximum=30),
        "Width": Field(UINT64, default=0, code=Code.INVALID_PARAMETER_VALUE_WIDTH),
        "Height": Field(UINT64, default=0, code=Code.INVALID_PARAMETER_VALUE_HEIGHT),
        "ResolutionAdaptive": Field(STRING, default="open", choices=frozenset({"open", "close"})),
        "Format": Field(STRING, default="gif", choices=frozenset({"gif", "webp"})),
        "Quality": Field(FLOAT, default=75.0, minimum=1, maximum=100),
        "Name": Field(STRING, max_length=64, code=Code.INVALID_PARAMETER_VALUE_NAME),
        "Comment": Field(STRING, max_length=256, code=Code.INVALID_PARAMETER_VALUE_COMMENT),
    }
)
CREATE_SENT: dict[str, Any] = {
    "Fps": 10,
    "SubAppId": 1500000001,
    "Width": 320,
    "Height": 0,
    "Format": "gif",
    "Quality": 75.0,
    "Name": "n ü&=+/%_.?#",
    "Comment": "",
}
CREATE_EXPECTED: dict[str, Any] = {
    "Fps": 10,
    "Width": 320,
    "Height": 0,
    "ResolutionAdaptive": "open",
    "Format": "gif",
    "Quality": 75.0,
    "Name": "n ü&=+/%_.?#",
    "Comment": "",
    "SubAppId": 1500000001,
}

ANIMATED_TASK = Object(
    {
        "Definition": Field(UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_DEFINITION),
        "StartTimeOffset": Field(FLOAT, default=0.0),
        "EndTimeOffset": Field(FLOAT, default=0.0),
    }
)
PROCESS_SCHEMA = Object(
    {
        "FileId": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_FILE_ID),
        "MediaProcessTask": Field(
            Object({"AnimatedGraphicTaskSet": Field(Array(ANIMATED_TASK), max_items=10)})
        ),
        "TasksPriority": Field(INT64, default=0, minimum=-10, maximum=10),
        "TasksNotifyMode": Field(STRING, default="Finish"),
        "SessionContext": Field(STRING, max_length=1000),
        "SessionId": Field(STRING, max_length=50),
    }
)
PROCESS_SENT: dict[str, Any] = {
    "FileId": "5285485487985271487",
    "SubAppId": 1500000001,
    "MediaProcessTask": {
        "AnimatedGraphicTaskSet": [
            {"Definition": 20000, "StartTimeOffset": 1.5, "EndTimeOffset": 4},
            {"Definition": 20001, "StartTimeOffset": -3.25, "EndTimeOffset": 0},
        ]
    },
    "TasksPriority": -5,
    "SessionContext": "ctx & more=1",
    "SessionId": "s1",
}
PROCESS_EXPECTED: dict[str, Any] = {
    "FileId": "5285485487985271487",
    "MediaProcessTask": {
        "AnimatedGraphicTaskSet": [
            {"Definition": 20000, "StartTimeOffset": 1.5, "EndTimeOffset": 4.0},
            {"Definition": 20001, "StartTimeOffset": -3.25, "EndTimeOffset": 0.0},
        ]
    },
    "TasksPriority": -5,
    "TasksNotifyMode": "Finish",
    "SessionContext": "ctx & more=1",
    "SessionId": "s1",
    "SubAppId": 1500000001,
}

CASES = {
    "CreateAnimatedGraphicsTemplate": (CREATE_SCHEMA, CREATE_SENT, CREATE_EXPECTED),
    "ProcessMedia": (PROCESS_SCHEMA, PROCESS_SENT, PROCESS_EXPECTED),
}


def assert_same(actual: Any, expected: Any) -> None:
    """Equal values of equal JSON types (``75 == 75.0`` is not enough)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for item, expected_item in zip(actual, expected, strict=True):
            assert_same(item, expected_item)
    else:
        assert actual == expected


def stringified(value: Any) -> Any:
    """What the flattened form carries: every leaf as Python ``str()`` (spec 1.5)."""
    if isinstance(value, dict):
        return {key: stringified(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringified(item) for item in value]
    return str(value)


def verify(captured: Captured, now: float | None = None, lookup: Any = LOOKUP) -> Verified:
    return verify_request(
        captured.method,
        captured.raw_query,
        captured.headers,
        captured.body,
        lookup,
        time.time() if now is None else now,
    )


def error_of(captured: Captured, now: float | None = None, lookup: Any = LOOKUP) -> ApiError:
    with pytest.raises(ApiError) as info:
        verify(captured, now, lookup)
    return info.value


def timestamp_of(captured: Captured) -> int:
    if "X-TC-Timestamp" in captured.headers:
        return int(captured.headers["X-TC-Timestamp"])
    text = captured.raw_query if captured.method == "GET" else captured.body.decode()
    return int(dict(parse_qsl(text))["Timestamp"])


def with_params_text(captured: Captured, edit: Any) -> Captured:
    """Apply ``edit(str) -> str`` to wherever the parameters travel."""
    if captured.method == "GET":
        return dataclasses.replace(captured, raw_query=edit(captured.raw_query))
    return dataclasses.replace(captured, body=edit(captured.body.decode()).encode())


def with_headers(captured: Captured, **changes: str | None) -> Captured:
    headers = dict(captured.headers)
    for name, value in changes.items():
        header = name.replace("_", "-")
        headers = {k: v for k, v in headers.items() if k.lower() != header.lower()}
        if value is not None:
            headers[header] = value
    return dataclasses.replace(captured, headers=headers)


# ---------------------------------------------------------------------------------------------
# Round trips: every signing mode, real SDK requests


@pytest.mark.parametrize("action", sorted(CASES))
@pytest.mark.parametrize(("sign_method", "req_method"), MODES, ids=MODE_IDS)
def test_sdk_request_verifies_and_params_round_trip(
    sdk_call: SdkCall, action: str, sign_method: str, req_method: str
) -> None:
    schema, sent, expected = CASES[action]
    captured = sdk_call(action, sent, sign_method=sign_method, req_method=req_method)
    assert captured.method == req_method and captured.path == "/"

    verified = verify(captured)

    assert verified.secret_id == SECRET_ID
    assert verified.action == action
    assert verified.token is None
    assert verified.sign_method == sign_method
    assert verified.language == "zh-CN"
    assert verified.region is None
    json_body = sign_method == "TC3-HMAC-SHA256" and req_method == "POST"
    assert verified.flattened is not json_body
    if json_body:
        assert_same(verified.params, json.loads(captured.body))
        assert verified.params == sent
    else:
        assert verified.params == stringified(sent)
    assert_same(parse(schema, verified.params, flattened=verified.flattened), expected)


@pytest.mark.parametrize(("sign_method", "req_method"), MODES, ids=MODE_IDS)
def test_token_region_and_language_are_reported_not_mixed_into_params(
    sdk_call: SdkCall, sign_method: str, req_method: str
) -> None:
    captured = sdk_call(
        "CreateAnimatedGraphicsTemplate",
        {"Fps": 5},
        sign_method=sign_method,
        req_method=req_method,
        token="tmp-token/+=",
        region="ap-guangzhou",
        language="en-US",
    )
    verified = verify(captured)
    assert verified.token == "tmp-token/+="
    assert verified.region == "ap-guangzhou"
    assert verified.language == "en-US"
    assert verified.params == ({"Fps": 5} if not verified.flattened else {"Fps": "5"})


@pytest.mark.parametrize("req_method", ["POST", "GET"])
def test_endpoint_given_as_url_signs_host_with_scheme(sdk_call: SdkCall, req_method: str) -> None:
    """Spec 1.7: with endpoint ``http://host:port`` the SDK sends and signs that literal Host."""
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5}, req_method=req_method)
    port = captured.headers["Host"].rsplit(":", 1)[1]
    for sign_method in ("TC3-HMAC-SHA256", "HmacSHA256"):
        odd = sdk_call(
            "CreateAnimatedGraphicsTemplate",
            {"Fps": 5},
            sign_method=sign_method,
            req_method=req_method,
            endpoint=f"http://127.0.0.1:{port}",
        )
        assert odd.headers["Host"] == f"http://127.0.0.1:{port}"
        assert verify(odd).action == "CreateAnimatedGraphicsTemplate"


def test_unsigned_payload_is_honoured(sdk_call: SdkCall) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5}, unsigned_payload=True)
    assert captured.headers["X-TC-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert verify(captured).params == {"Fps": 5}
    # The body is then outside the signature, by the client's choice.
    changed = dataclasses.replace(captured, body=b'{"Fps": 6}')
    assert verify(changed).params == {"Fps": 6}
    # Dropping the header makes the server hash the real body, which was not what was signed.
    assert error_of(with_headers(captured, X_TC_Content_SHA256=None)).code == (
        Code.AUTH_FAILURE_SIGNATURE_FAILURE
    )


@pytest.mark.parametrize("sign_method", ["HmacSHA1", "HmacSHA256"])
def test_v1_parameter_order_does_not_matter(sdk_call: SdkCall, sign_method: str) -> None:
    captured = sdk_call("ProcessMedia", PROCESS_SENT, sign_method=sign_method, req_method="GET")
    pairs = captured.raw_query.split("&")
    reordered = dataclasses.replace(captured, raw_query="&".join(reversed(pairs)))
    assert verify(reordered).params == verify(captured).params


def test_header_names_are_case_insensitive(sdk_call: SdkCall) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5})
    upper = dataclasses.replace(
        captured, headers={k.upper(): v for k, v in captured.headers.items()}
    )
    assert verify(upper).action == "CreateAnimatedGraphicsTemplate"


def test_direct_entry_points(sdk_call: SdkCall) -> None:
    tc3 = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5})
    v1 = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5}, sign_method="HmacSHA1")
    args = (LOOKUP, time.time())
    assert verify_tc3(tc3.method, tc3.raw_query, tc3.headers, tc3.body, *args).params == {"Fps": 5}
    assert verify_v1(v1.method, v1.raw_query, v1.headers, v1.body, *args).params == {"Fps": "5"}
    stripped = with_params_text(v1, lambda text: text.split("&Signature=")[0])
    with pytest.raises(ApiError) as info:
        verify_v1(stripped.method, stripped.raw_query, stripped.headers, stripped.body, *args)
    assert info.value.code == Code.MISSING_PARAMETER
    assert "Signature" in info.value.message


# ---------------------------------------------------------------------------------------------
# Rejections, every mode


@pytest.fixture(params=MODES, ids=MODE_IDS)
def captured(request: pytest.FixtureRequest, sdk_call: SdkCall) -> Captured:
    sign_method, req_method = request.param
    return sdk_call("ProcessMedia", PROCESS_SENT, sign_method=sign_method, req_method=req_method)


def test_tampered_parameters_fail(captured: Captured) -> None:
    def edit(text: str) -> str:
        for old, new in (
            ('"SessionId": "s1"', '"SessionId": "s2"'),
            ("SessionId=s1", "SessionId=s2"),
        ):
            if old in text:
                return text.replace(old, new)
        raise AssertionError(f"nothing to tamper with in {text!r}")

    assert error_of(with_params_text(captured, edit)).code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


def test_wrong_key_fails(captured: Captured) -> None:
    error = error_of(captured, lookup={SECRET_ID: "another-key"}.get)
    assert error.code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


def test_unknown_secret_id_fails(captured: Captured) -> None:
    error = error_of(captured, lookup={"someone-else": SECRET_KEY}.get)
    assert error.code == Code.AUTH_FAILURE_SECRET_ID_NOT_FOUND
    assert SECRET_ID in error.message


def test_other_host_fails(captured: Captured) -> None:
    moved = with_headers(captured, Host="vod.tencentcloudapi.com")
    assert error_of(moved).code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


@pytest.mark.parametrize("skew", [-301, 301, -1000000, 10**12])
def test_timestamp_outside_window_expires(captured: Captured, skew: int) -> None:
    # The request was signed at ``ts``; a server clock ``skew`` seconds away must refuse it.
    now = timestamp_of(captured) - skew
    assert error_of(captured, now=now).code == Code.AUTH_FAILURE_SIGNATURE_EXPIRE


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamp_inside_window_passes(captured: Captured, skew: int) -> None:
    assert verify(captured, now=timestamp_of(captured) + skew).action == "ProcessMedia"


def test_method_other_than_get_or_post_is_refused(captured: Captured) -> None:
    error = error_of(dataclasses.replace(captured, method="PUT"))
    assert error.code == Code.UNSUPPORTED_PROTOCOL


# ---------------------------------------------------------------------------------------------
# TC3 specifics


def test_tc3_get_signs_the_raw_query_text(sdk_call: SdkCall) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", CREATE_SENT, req_method="GET")
    assert "Name=n+%C3%BC" in captured.raw_query
    # Same decoded parameters, different encoding: not what was signed.
    reencoded = dataclasses.replace(
        captured, raw_query=captured.raw_query.replace("Name=n+", "Name=n%20")
    )
    assert error_of(reencoded).code == Code.AUTH_FAILURE_SIGNATURE_FAILURE
    reordered = dataclasses.replace(
        captured, raw_query="&".join(reversed(captured.raw_query.split("&")))
    )
    assert error_of(reordered).code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


def test_tc3_content_type_is_signed(sdk_call: SdkCall) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5})
    changed = with_headers(captured, Content_Type="application/json; charset=utf-8")
    assert error_of(changed).code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


_CRED = "Credential=a/2024-01-01/vod/tc3_request"
_HEADERS = "SignedHeaders=content-type;host"
_SIG = "Signature=" + "0" * 64


@pytest.mark.parametrize(
    "authorization",
    [
        "TC3-HMAC-SHA256",
        "TC3-HMAC-SHA256 garbage",
        f"TC3-HMAC-SHA256X {_CRED}, {_HEADERS}, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, {_HEADERS}",
        f"TC3-HMAC-SHA256 Credential=a/2024-01-01/vod, {_HEADERS}, {_SIG}",
        f"TC3-HMAC-SHA256 Credential=/2024-01-01/vod/tc3_request, {_HEADERS}, {_SIG}",
        f"TC3-HMAC-SHA256 Credential=a/20240101/vod/tc3_request, {_HEADERS}, {_SIG}",
        f"TC3-HMAC-SHA256 Credential=a/2024-01-01/vod/tc3_v2, {_HEADERS}, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, SignedHeaders=host, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, SignedHeaders=content-type;Host, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, SignedHeaders=content-type;host;host, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, SignedHeaders=, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, {_HEADERS}, Signature=xyz",
        f"TC3-HMAC-SHA256 {_CRED}, {_HEADERS}, Signature={'é' * 64}",
        f"TC3-HMAC-SHA256 {_CRED}, {_CRED}, {_HEADERS}, {_SIG}",
        f"TC3-HMAC-SHA256 {_CRED}, {_HEADERS}, {_SIG}, Extra=1",
        f"TC3-HMAC-SHA256 {_CRED} {_HEADERS} {_SIG}",
        "Bearer abc",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_garbage_authorization_header(sdk_call: SdkCall, authorization: str) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5})
    error = error_of(with_headers(captured, Authorization=authorization))
    assert error.code == Code.AUTH_FAILURE_INVALID_AUTHORIZATION


def test_tc3_wrong_version_and_missing_action(sdk_call: SdkCall) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5})
    assert error_of(with_headers(captured, X_TC_Version="2017-03-12")).code == Code.NO_SUCH_VERSION
    # The version header is optional.
    assert verify(with_headers(captured, X_TC_Version=None)).action
    error = error_of(with_headers(captured, X_TC_Action=None))
    assert error.code == Code.MISSING_PARAMETER and "X-TC-Action" in error.message
    error = error_of(with_headers(captured, X_TC_Timestamp=None))
    assert error.code == Code.MISSING_PARAMETER and "X-TC-Timestamp" in error.message
    error = error_of(with_headers(captured, X_TC_Timestamp="12.5"))
    assert error.code == Code.INVALID_PARAMETER


def test_tc3_signed_timestamp_cannot_be_moved(sdk_call: SdkCall) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5})
    later = str(timestamp_of(captured) + 1)
    assert error_of(with_headers(captured, X_TC_Timestamp=later)).code == (
        Code.AUTH_FAILURE_SIGNATURE_FAILURE
    )


# A client-side TC3 signer written from the spec (HMAC chain from the SDK's own Sign class), for
# requests the SDK will not produce.


def tc3_request(
    body: bytes = b'{"Fps": 5}',
    *,
    timestamp: int | None = None,
    date: str | None = None,
    content_type: str = "application/json",
    signed: tuple[str, ...] = ("content-type", "host"),
    lowercase_values: bool = False,
    extra: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    service: str = "vod",
    signed_host: str | None = None,
) -> Captured:
    timestamp = int(time.time()) if timestamp is None else timestamp
    date = date or datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")
    headers = {
        "Host": "vod.example.test:8443",
        "Content-Type": content_type,
        "X-TC-Action": "CreateAnimatedGraphicsTemplate",
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": "2018-07-17",
        **(extra or {}),
    }
    lower = {name.lower(): value.strip() for name, value in headers.items()}
    lower["host"] = signed_host or lower["host"]
    canonical_headers = "".join(
        f"{name}:{lower[name].lower() if lowercase_values else lower[name]}\n" for name in signed
    )
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    signature = Sign.sign_tc3(SECRET_KEY, date, service, string_to_sign)
    headers["Authorization"] = (
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/{service}/tc3_request, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    for name in drop:
        del headers[name]
    return Captured("POST", "/", "", headers, body)


def test_own_signer_agrees_with_the_server() -> None:
    assert verify(tc3_request()).params == {"Fps": 5}


def test_tencent_documented_canonical_form_with_extra_signed_header() -> None:
    """Tencent's docs sign ``x-tc-action`` and lower-case header values; accept that too."""
    captured = tc3_request(
        content_type="application/json; charset=utf-8",
        signed=("content-type", "host", "x-tc-action"),
        lowercase_values=True,
    )
    assert verify(captured).action == "CreateAnimatedGraphicsTemplate"
    # x-tc-action is now covered by the signature.
    renamed = with_headers(captured, X_TC_Action="DeleteAnimatedGraphicsTemplate")
    assert error_of(renamed).code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


def test_signed_header_absent_from_request() -> None:
    captured = tc3_request(
        signed=("content-type", "host", "x-tc-nonce"),
        extra={"X-TC-Nonce": "1"},
        drop=("X-TC-Nonce",),
    )
    assert error_of(captured).code == Code.AUTH_FAILURE_INVALID_AUTHORIZATION


def test_credential_date_must_be_the_timestamp_date() -> None:
    just_after_midnight = int(datetime(2024, 5, 1, 0, 0, 30, tzinfo=UTC).timestamp())
    good = tc3_request(timestamp=just_after_midnight)
    assert verify(good, now=just_after_midnight).action
    # Correctly signed, but with the previous day in the credential scope.
    stale = tc3_request(timestamp=just_after_midnight, date="2024-04-30")
    error = error_of(stale, now=just_after_midnight)
    assert error.code == Code.AUTH_FAILURE_SIGNATURE_FAILURE
    assert "2024-04-30" in error.message


@pytest.mark.parametrize("service", ["vod", "127", "cvm"])
def test_credential_service_is_taken_as_signed(service: str) -> None:
    """Tencent's Node.js SDK names the endpoint's first DNS label (``127`` for an IP)."""
    assert verify(tc3_request(service=service)).params == {"Fps": 5}


def test_credential_service_is_covered_by_the_signature() -> None:
    signed = tc3_request(service="127")
    claimed = signed.headers["Authorization"].replace("/127/", "/vod/")
    error = error_of(with_headers(signed, Authorization=claimed))
    assert error.code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


def test_host_signed_without_its_port() -> None:
    """The Node.js SDK signs ``URL.hostname`` and sends ``URL.host``."""
    captured = tc3_request(signed_host="vod.example.test")
    assert verify(captured).params == {"Fps": 5}
    # The host name is still signed: another one fails, with or without the port.
    for host in ("other.example.test:8443", "other.example.test"):
        assert error_of(with_headers(captured, Host=host)).code == (
            Code.AUTH_FAILURE_SIGNATURE_FAILURE
        )
    # What that form leaves unsigned is only the port, which routes nothing here.
    assert verify(with_headers(captured, Host="vod.example.test:9000")).params == {"Fps": 5}


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    captured = tc3_request(signed_host="vod.example.test", service="127")
    signature = captured.headers["Authorization"].rsplit("Signature=", 1)[1].encode()
    verify(captured)
    assert compared and all(b == signature for _, b in compared)
    # Both host forms are compared (the port-less one, which matches, first): the loop does
    # not stop at a match, so the time taken does not say which form the client signed.
    assert len(compared) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b'{"Fps": 5',
        b"\xff\xfe{",
        b'{"Fps": NaN}',
        b'{"A": 1, "A": 2}',
        b"[" * 100000,
    ],
)
def test_malformed_json_body(body: bytes) -> None:
    error = error_of(tc3_request(body))
    assert error.code == Code.INVALID_PARAMETER
    assert "JSON" in error.message


@pytest.mark.parametrize("body", [b"[1, 2]", b'"Fps"', b"5", b"null", b"true"])
def test_non_object_json_body(body: bytes) -> None:
    error = error_of(tc3_request(body))
    assert error.code == Code.INVALID_PARAMETER
    assert "object" in error.message


def test_json_body_is_parsed_only_after_authentication() -> None:
    captured = tc3_request(b"{not json")
    assert error_of(captured, lookup={}.get).code == Code.AUTH_FAILURE_SECRET_ID_NOT_FOUND


def test_tc3_post_form_body_is_flattened() -> None:
    captured = tc3_request(
        b"Fps=5&Name=a+b&Definitions.0=1", content_type="application/x-www-form-urlencoded"
    )
    verified = verify(captured)
    assert verified.flattened
    assert verified.params == {"Fps": "5", "Name": "a b", "Definitions": ["1"]}


def test_tc3_post_other_content_type() -> None:
    error = error_of(tc3_request(b"Fps: 5", content_type="text/plain"))
    assert error.code == Code.INVALID_PARAMETER


# ---------------------------------------------------------------------------------------------
# Legacy v1 specifics


@pytest.fixture(params=["GET", "POST"])
def v1(request: pytest.FixtureRequest, sdk_call: SdkCall) -> Captured:
    return sdk_call(
        "CreateAnimatedGraphicsTemplate",
        {"Fps": 5, "Name": "x"},
        sign_method="HmacSHA256",
        req_method=request.param,
    )


def drop_param(captured: Captured, name: str) -> Captured:
    def edit(text: str) -> str:
        return "&".join(p for p in text.split("&") if not p.startswith(f"{name}="))

    return with_params_text(captured, edit)


def test_v1_public_params_are_removed(v1: Captured) -> None:
    verified = verify(v1)
    assert verified.params == {"Fps": "5", "Name": "x"}
    assert verified.sign_method == "HmacSHA256"


def test_v1_missing_signature_is_unsigned(v1: Captured) -> None:
    error = error_of(drop_param(v1, "Signature"))
    assert error.code == Code.AUTH_FAILURE_SIGNATURE_FAILURE
    assert "not signed" in error.message


@pytest.mark.parametrize("name", ["Nonce", "Timestamp", "SecretId", "Action"])
def test_v1_missing_public_param(v1: Captured, name: str) -> None:
    error = error_of(drop_param(v1, name))
    assert error.code == Code.MISSING_PARAMETER
    assert name in error.message


def test_v1_bad_signature_method_version_and_duplicates(v1: Captured) -> None:
    def replace(old: str, new: str) -> Captured:
        return with_params_text(v1, lambda text: text.replace(old, new))

    error = error_of(replace("SignatureMethod=HmacSHA256", "SignatureMethod=HmacMD5"))
    assert error.code == Code.INVALID_PARAMETER_VALUE
    assert error_of(replace("Version=2018-07-17", "Version=2017-03-12")).code == (
        Code.NO_SUCH_VERSION
    )
    assert error_of(replace("Fps=5", "Fps=5&Fps=5")).code == Code.INVALID_PARAMETER
    # The signed method is part of what was signed.
    assert error_of(replace("SignatureMethod=HmacSHA256", "SignatureMethod=HmacSHA1")).code == (
        Code.AUTH_FAILURE_SIGNATURE_FAILURE
    )


@pytest.mark.parametrize("req_method", ["GET", "POST"])
def test_v1_signature_with_unescaped_plus_is_tolerated(sdk_call: SdkCall, req_method: str) -> None:
    for _ in range(100):  # about half of all base64 signatures hold a '+'
        captured = sdk_call(
            "CreateAnimatedGraphicsTemplate",
            {"Fps": 5},
            sign_method="HmacSHA1",
            req_method=req_method,
        )
        if "%2B" in captured.raw_query + captured.body.decode():
            break
    else:
        raise AssertionError("no signature with '+' in 100 tries")
    sloppy = with_params_text(captured, lambda text: text.replace("%2B", "+"))
    assert verify(sloppy).action == "CreateAnimatedGraphicsTemplate"


def test_v1_post_with_json_content_type_is_not_v1(sdk_call: SdkCall) -> None:
    captured = sdk_call("CreateAnimatedGraphicsTemplate", {"Fps": 5}, sign_method="HmacSHA1")
    error = error_of(with_headers(captured, Content_Type="application/json"))
    assert error.code == Code.AUTH_FAILURE_SIGNATURE_FAILURE


def test_unsigned_request_and_other_schemes() -> None:
    bare = Captured("GET", "/", "Action=DescribeTaskDetail&TaskId=1", {"Host": "h"}, b"")
    assert error_of(bare).code == Code.AUTH_FAILURE_SIGNATURE_FAILURE
    bearer = dataclasses.replace(bare, headers={"Host": "h", "Authorization": "Bearer x"})
    assert error_of(bearer).code == Code.AUTH_FAILURE_INVALID_AUTHORIZATION


def test_query_encoding_errors_and_field_limit() -> None:
    bad_utf8 = Captured("GET", "/", "Signature=x&Name=%FF", {"Host": "h"}, b"")
    assert error_of(bad_utf8).code == Code.INVALID_PARAMETER
    many = "&".join(f"P{i}=1" for i in range(MAX_FIELDS + 1))
    huge = Captured("GET", "/", many, {"Host": "h"}, b"")
    assert error_of(huge).code == Code.REQUEST_SIZE_LIMIT_EXCEEDED
