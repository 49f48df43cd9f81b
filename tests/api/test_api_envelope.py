"""The response envelope (spec 1.6) and the error type."""

from __future__ import annotations

import json
import pickle
import uuid

import pytest

from anigraph.api import errors
from anigraph.api.envelope import CONTENT_TYPE, failure, new_request_id, success
from anigraph.api.errors import ApiError, Code


def test_content_type_is_exactly_application_json() -> None:
    assert CONTENT_TYPE == "application/json"


def test_success_bytes() -> None:
    body = success("req-1", {"Definition": 1008, "Items": [], "Nothing": None, "Q": 75.0})
    assert body == (
        b'{"Response":{"Definition":1008,"Items":[],"Nothing":null,"Q":75.0,"RequestId":"req-1"}}'
    )


def test_success_without_output_fields() -> None:
    assert success("r", {}) == b'{"Response":{"RequestId":"r"}}'


def test_success_is_utf8_not_escaped() -> None:
    body = success("r", {"Name": "动图 ü"})
    assert body == '{"Response":{"Name":"动图 ü","RequestId":"r"}}'.encode()
    assert json.loads(body)["Response"]["Name"] == "动图 ü"


@pytest.mark.parametrize("reserved", ["RequestId", "Error"])
def test_success_refuses_reserved_fields(reserved: str) -> None:
    with pytest.raises(ValueError, match=reserved):
        success("r", {reserved: "x"})


def test_success_refuses_nan() -> None:
    with pytest.raises(ValueError):
        success("r", {"Quality": float("nan")})


def test_failure_bytes() -> None:
    error = ApiError(Code.INVALID_PARAMETER_VALUE_FPS, "Fps must be in [1, 30].")
    assert failure("req-2", error) == (
        b'{"Response":{"Error":{"Code":"InvalidParameterValue.Fps",'
        b'"Message":"Fps must be in [1, 30]."},"RequestId":"req-2"}}'
    )


def test_request_ids_are_fresh_uuid4() -> None:
    first, second = new_request_id(), new_request_id()
    assert first != second
    assert uuid.UUID(first).version == 4


def test_api_error_shape() -> None:
    error = errors.missing_parameter("Fps")
    assert error.code == "MissingParameter"
    assert type(error.code) is str
    assert "`Fps`" in error.message
    assert str(error) == f"MissingParameter: {error.message}"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message) == (error.code, error.message)


def test_codes_are_spelled_as_in_the_spec() -> None:
    assert Code.AUTH_FAILURE_MFA_FAILURE.value == "AuthFailure.MFAFailure"
    assert (
        Code.REQUEST_LIMIT_EXCEEDED_IP_LIMIT_EXCEEDED.value
        == "RequestLimitExceeded.IPLimitExceeded"
    )
    assert Code.RESOURCE_NOT_FOUND_TEMPLATE_NOT_EXIST.value == "ResourceNotFound.TemplateNotExist"
    assert Code.INVALID_PARAMETER_VALUE_FORMAT_WEBP_WIDTH_AND_HEIGHT_BOTH_ZERO.value == (
        "InvalidParameterValue.FormatWebpWidthAndHeightBothZero"
    )
    assert len({code.value for code in Code}) == len(Code)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.unknown_parameter("X"), "UnknownParameter"),
        (errors.invalid_parameter("bad"), "InvalidParameter"),
        (errors.invalid_parameter_value("Fps", "bad"), "InvalidParameterValue"),
        (
            errors.invalid_parameter_value("Fps", "bad", Code.INVALID_PARAMETER_VALUE_FPS),
            "InvalidParameterValue.Fps",
        ),
        (errors.invalid_action("Nope"), "InvalidAction"),
        (errors.no_such_version("2017-03-12"), "NoSuchVersion"),
        (errors.unsupported_protocol("PUT"), "UnsupportedProtocol"),
        (errors.invalid_authorization("bad"), "AuthFailure.InvalidAuthorization"),
        (errors.signature_failure(), "AuthFailure.SignatureFailure"),
        (errors.signature_expire("old"), "AuthFailure.SignatureExpire"),
        (errors.secret_id_not_found("AKID"), "AuthFailure.SecretIdNotFound"),
        (errors.request_size_limit_exceeded(1024), "RequestSizeLimitExceeded"),
        (errors.template_not_exist(1008), "ResourceNotFound.TemplateNotExist"),
        (errors.too_much_template(16), "LimitExceeded.TooMuchTemplate"),
        (errors.failed_operation("no"), "FailedOperation"),
        (errors.unauthorized_operation(), "UnauthorizedOperation"),
        (errors.internal_error(), "InternalError"),
    ],
)
def test_helpers(error: ApiError, code: str) -> None:
    assert error.code == code
    assert error.message
    assert json.loads(failure("r", error))["Response"]["Error"]["Code"] == code
