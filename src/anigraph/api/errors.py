"""API errors: Tencent ``Code`` values (spec 7.4) as exceptions, and helpers for the common ones.

``ApiError.code`` is a plain string so that action modules may also raise the per-action codes
listed in spec section 2; ``Code`` enumerates the common and VOD-specific codes of spec 7.4.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """API error codes from spec 7.4 (common codes, then the VOD-specific ones)."""

    # Auth
    AUTH_FAILURE_SIGNATURE_FAILURE = "AuthFailure.SignatureFailure"
    AUTH_FAILURE_SIGNATURE_EXPIRE = "AuthFailure.SignatureExpire"
    AUTH_FAILURE_SECRET_ID_NOT_FOUND = "AuthFailure.SecretIdNotFound"
    AUTH_FAILURE_INVALID_SECRET_ID = "AuthFailure.InvalidSecretId"
    AUTH_FAILURE_TOKEN_FAILURE = "AuthFailure.TokenFailure"
    AUTH_FAILURE_MFA_FAILURE = "AuthFailure.MFAFailure"
    AUTH_FAILURE_UNAUTHORIZED_OPERATION = "AuthFailure.UnauthorizedOperation"
    AUTH_FAILURE_INVALID_AUTHORIZATION = "AuthFailure.InvalidAuthorization"
    # Request
    INVALID_ACTION = "InvalidAction"
    NO_SUCH_VERSION = "NoSuchVersion"
    NO_SUCH_PRODUCT = "NoSuchProduct"
    ACTION_OFFLINE = "ActionOffline"
    INVALID_PARAMETER = "InvalidParameter"
    INVALID_PARAMETER_VALUE = "InvalidParameterValue"
    MISSING_PARAMETER = "MissingParameter"
    UNKNOWN_PARAMETER = "UnknownParameter"
    INVALID_REQUEST = "InvalidRequest"
    UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
    UNSUPPORTED_REGION = "UnsupportedRegion"
    UNSUPPORTED_OPERATION = "UnsupportedOperation"
    # Rate, quota and size
    REQUEST_LIMIT_EXCEEDED = "RequestLimitExceeded"
    REQUEST_LIMIT_EXCEEDED_UIN_LIMIT_EXCEEDED = "RequestLimitExceeded.UinLimitExceeded"
    REQUEST_LIMIT_EXCEEDED_IP_LIMIT_EXCEEDED = "RequestLimitExceeded.IPLimitExceeded"
    REQUEST_LIMIT_EXCEEDED_GLOBAL_REGION_UIN_LIMIT_EXCEEDED = (
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded"
    )
    REQUEST_SIZE_LIMIT_EXCEEDED = "RequestSizeLimitExceeded"
    RESPONSE_SIZE_LIMIT_EXCEEDED = "ResponseSizeLimitExceeded"
    LIMIT_EXCEEDED = "LimitExceeded"
    # Resources
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    RESOURCE_IN_USE = "ResourceInUse"
    RESOURCE_INSUFFICIENT = "ResourceInsufficient"
    RESOURCE_UNAVAILABLE = "ResourceUnavailable"
    # Other
    INTERNAL_ERROR = "InternalError"
    FAILED_OPERATION = "FailedOperation"
    UNAUTHORIZED_OPERATION = "UnauthorizedOperation"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    IP_IN_BLACKLIST = "IpInBlacklist"
    IP_NOT_IN_WHITELIST = "IpNotInWhitelist"
    DRY_RUN_OPERATION = "DryRunOperation"
    # VOD: operation failures
    FAILED_OPERATION_INVALID_VOD_USER = "FailedOperation.InvalidVodUser"
    FAILED_OPERATION_TASK_DUPLICATE = "FailedOperation.TaskDuplicate"
    FAILED_OPERATION_MEDIA_TYPE = "FailedOperation.MediaType"
    FAILED_OPERATION_COVER_TYPE = "FailedOperation.CoverType"
    FAILED_OPERATION_UPLOAD_COS_FAIL = "FailedOperation.UploadCosFail"
    # VOD: internal errors
    INTERNAL_ERROR_GEN_DEFINITION = "InternalError.GenDefinition"
    INTERNAL_ERROR_GET_FILE_INFO_ERROR = "InternalError.GetFileInfoError"
    INTERNAL_ERROR_GET_MEDIA_LIST_ERROR = "InternalError.GetMediaListError"
    # VOD: bad parameters
    INVALID_PARAMETER_EXISTED_PROCEDURE_NAME = "InvalidParameter.ExistedProcedureName"
    INVALID_PARAMETER_PROCEDURE_NAME_NOT_EXIST = "InvalidParameter.ProcedureNameNotExist"
    INVALID_PARAMETER_EXPIRE_TIME = "InvalidParameter.ExpireTime"
    INVALID_PARAMETER_STORAGE_REGION = "InvalidParameter.StorageRegion"
    # VOD: bad parameter values, templates
    INVALID_PARAMETER_VALUE_DEFINITION = "InvalidParameterValue.Definition"
    INVALID_PARAMETER_VALUE_DEFINITIONS = "InvalidParameterValue.Definitions"
    INVALID_PARAMETER_VALUE_FPS = "InvalidParameterValue.Fps"
    INVALID_PARAMETER_VALUE_WIDTH = "InvalidParameterValue.Width"
    INVALID_PARAMETER_VALUE_HEIGHT = "InvalidParameterValue.Height"
    INVALID_PARAMETER_VALUE_RESOLUTION = "InvalidParameterValue.Resolution"
    INVALID_PARAMETER_VALUE_RESOLUTION_ADAPTIVE = "InvalidParameterValue.ResolutionAdaptive"
    INVALID_PARAMETER_VALUE_FORMAT = "InvalidParameterValue.Format"
    INVALID_PARAMETER_VALUE_FORMAT_WEBP_LACK_WIDTH_AND_HEIGHT = (
        "InvalidParameterValue.FormatWebpLackWidthAndHeight"
    )
    INVALID_PARAMETER_VALUE_FORMAT_WEBP_WIDTH_AND_HEIGHT_BOTH_ZERO = (
        "InvalidParameterValue.FormatWebpWidthAndHeightBothZero"
    )
    INVALID_PARAMETER_VALUE_QUALITY = "InvalidParameterValue.Quality"
    INVALID_PARAMETER_VALUE_NAME = "InvalidParameterValue.Name"
    INVALID_PARAMETER_VALUE_COMMENT = "InvalidParameterValue.Comment"
    INVALID_PARAMETER_VALUE_MODIFY_DEFAULT_TEMPLATE = "InvalidParameterValue.ModifyDefaultTemplate"
    INVALID_PARAMETER_VALUE_DELETE_DEFAULT_TEMPLATE = "InvalidParameterValue.DeleteDefaultTemplate"
    # Template extension fields (docs/api.md), named like Tencent's own
    INVALID_PARAMETER_VALUE_MAX_SIZE = "InvalidParameterValue.MaxSize"
    INVALID_PARAMETER_VALUE_QUALITY_TARGET = "InvalidParameterValue.QualityTarget"
    INVALID_PARAMETER_VALUE_SEGMENT_MODE = "InvalidParameterValue.SegmentMode"
    INVALID_PARAMETER_VALUE_DURATION = "InvalidParameterValue.Duration"
    INVALID_PARAMETER_VALUE_LOOP_MODE = "InvalidParameterValue.LoopMode"
    # VOD: bad parameter values, processing
    INVALID_PARAMETER_VALUE_START_TIME_OFFSET = "InvalidParameterValue.StartTimeOffset"
    INVALID_PARAMETER_VALUE_END_TIME_OFFSET = "InvalidParameterValue.EndTimeOffset"
    INVALID_PARAMETER_VALUE_FILE_ID = "InvalidParameterValue.FileId"
    INVALID_PARAMETER_VALUE_FILE_IDS = "InvalidParameterValue.FileIds"
    INVALID_PARAMETER_VALUE_FILE_IDS_EMPTY = "InvalidParameterValue.FileIdsEmpty"
    INVALID_PARAMETER_VALUE_FILE_IDS_OVER_LIMIT = "InvalidParameterValue.FileIdsOverLimit"
    INVALID_PARAMETER_VALUE_TASK_ID = "InvalidParameterValue.TaskId"
    INVALID_PARAMETER_VALUE_INVALID_OPERATION_TYPE = "InvalidParameterValue.InvalidOperationType"
    # VOD: bad parameter values, dedupe and context
    INVALID_PARAMETER_VALUE_SESSION_ID = "InvalidParameterValue.SessionId"
    INVALID_PARAMETER_VALUE_SESSION_ID_TOO_LONG = "InvalidParameterValue.SessionIdTooLong"
    INVALID_PARAMETER_VALUE_SESSION_CONTEXT_TOO_LONG = "InvalidParameterValue.SessionContextTooLong"
    INVALID_PARAMETER_VALUE_UNIQUE_IDENTIFIER = "InvalidParameterValue.UniqueIdentifier"
    # VOD: bad parameter values, upload and media
    INVALID_PARAMETER_VALUE_PROCEDURE_NAME = "InvalidParameterValue.ProcedureName"
    INVALID_PARAMETER_VALUE_PROCEDURE = "InvalidParameterValue.Procedure"
    INVALID_PARAMETER_VALUE_VOD_SESSION_KEY = "InvalidParameterValue.VodSessionKey"
    INVALID_PARAMETER_VALUE_MEDIA_TYPE = "InvalidParameterValue.MediaType"
    INVALID_PARAMETER_VALUE_COVER_TYPE = "InvalidParameterValue.CoverType"
    INVALID_PARAMETER_VALUE_MEDIA_URL = "InvalidParameterValue.MediaUrl"
    INVALID_PARAMETER_VALUE_COVER_URL = "InvalidParameterValue.CoverUrl"
    INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH = "InvalidParameterValue.MediaStoragePath"
    INVALID_PARAMETER_VALUE_EXPIRE_TIME = "InvalidParameterValue.ExpireTime"
    INVALID_PARAMETER_VALUE_STORAGE_REGION = "InvalidParameterValue.StorageRegion"
    INVALID_PARAMETER_VALUE_CLASS_ID = "InvalidParameterValue.ClassId"
    # VOD: bad parameter values, paging and filters
    INVALID_PARAMETER_VALUE_SUB_APP_ID = "InvalidParameterValue.SubAppId"
    INVALID_PARAMETER_VALUE_LIMIT = "InvalidParameterValue.Limit"
    INVALID_PARAMETER_VALUE_LIMIT_TOO_LARGE = "InvalidParameterValue.LimitTooLarge"
    INVALID_PARAMETER_VALUE_OFFSET = "InvalidParameterValue.Offset"
    INVALID_PARAMETER_VALUE_OFFSET_TOO_LARGE = "InvalidParameterValue.OffsetTooLarge"
    INVALID_PARAMETER_VALUE_TYPE = "InvalidParameterValue.Type"
    INVALID_PARAMETER_VALUE_STATUS = "InvalidParameterValue.Status"
    INVALID_PARAMETER_VALUE_NAMES = "InvalidParameterValue.Names"
    INVALID_PARAMETER_VALUE_SORT = "InvalidParameterValue.Sort"
    # VOD: not found
    RESOURCE_NOT_FOUND_TEMPLATE_NOT_EXIST = "ResourceNotFound.TemplateNotExist"
    RESOURCE_NOT_FOUND_FILE_NOT_EXIST = "ResourceNotFound.FileNotExist"
    RESOURCE_NOT_FOUND_USER_NOT_EXIST = "ResourceNotFound.UserNotExist"
    RESOURCE_NOT_FOUND_SERVICE_NOT_EXIST = "ResourceNotFound.ServiceNotExist"
    # VOD: limits and other
    LIMIT_EXCEEDED_TOO_MUCH_TEMPLATE = "LimitExceeded.TooMuchTemplate"
    UNSUPPORTED_OPERATION_CLASS_NOT_EMPTY = "UnsupportedOperation.ClassNotEmpty"


class ApiError(Exception):
    """An API failure rendered as ``{"Error": {"Code": code, "Message": message}}``."""

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = str(code)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


_ECHO_LIMIT = 100


def quote(text: str) -> str:
    """Echo client-supplied text in a message: backquoted and cut to a bounded length."""
    if len(text) > _ECHO_LIMIT:
        text = text[:_ECHO_LIMIT] + "…"
    return f"`{text}`"


def missing_parameter(name: str) -> ApiError:
    return ApiError(
        Code.MISSING_PARAMETER, f"The request is missing a required parameter {quote(name)}."
    )


def unknown_parameter(name: str) -> ApiError:
    return ApiError(Code.UNKNOWN_PARAMETER, f"The parameter {quote(name)} is not recognized.")


def invalid_parameter(message: str) -> ApiError:
    return ApiError(Code.INVALID_PARAMETER, message)


def invalid_parameter_value(
    name: str, message: str, code: str = Code.INVALID_PARAMETER_VALUE
) -> ApiError:
    """A bad value for ``name``; ``code`` may be a specific ``InvalidParameterValue.X``."""
    return ApiError(code, f"Invalid value for parameter {quote(name)}: {message}")


def invalid_action(action: str) -> ApiError:
    return ApiError(Code.INVALID_ACTION, f"The action {quote(action)} is not supported.")


def no_such_version(version: str) -> ApiError:
    return ApiError(
        Code.NO_SUCH_VERSION,
        f"The API version {quote(version)} does not exist; this service speaks 2018-07-17.",
    )


def unsupported_protocol(method: str) -> ApiError:
    return ApiError(
        Code.UNSUPPORTED_PROTOCOL,
        f"The HTTP method {quote(method)} is not supported; use GET or POST.",
    )


def invalid_authorization(message: str) -> ApiError:
    return ApiError(Code.AUTH_FAILURE_INVALID_AUTHORIZATION, message)


def signature_failure(
    message: str = "The provided credentials could not be validated; check the signature.",
) -> ApiError:
    return ApiError(Code.AUTH_FAILURE_SIGNATURE_FAILURE, message)


def signature_expire(message: str) -> ApiError:
    return ApiError(Code.AUTH_FAILURE_SIGNATURE_EXPIRE, message)


def secret_id_not_found(secret_id: str) -> ApiError:
    return ApiError(
        Code.AUTH_FAILURE_SECRET_ID_NOT_FOUND, f"The SecretId {quote(secret_id)} is not found."
    )


def request_size_limit_exceeded(limit_bytes: int) -> ApiError:
    return ApiError(
        Code.REQUEST_SIZE_LIMIT_EXCEEDED,
        f"The request exceeds the size limit of {limit_bytes} bytes.",
    )


def template_not_exist(definition: int) -> ApiError:
    return ApiError(
        Code.RESOURCE_NOT_FOUND_TEMPLATE_NOT_EXIST, f"The template {definition} does not exist."
    )


def too_much_template(limit: int) -> ApiError:
    return ApiError(
        Code.LIMIT_EXCEEDED_TOO_MUCH_TEMPLATE, f"The number of custom templates exceeds {limit}."
    )


def failed_operation(message: str) -> ApiError:
    return ApiError(Code.FAILED_OPERATION, message)


def unauthorized_operation(message: str = "The operation is not authorized.") -> ApiError:
    return ApiError(Code.UNAUTHORIZED_OPERATION, message)


def internal_error(message: str = "An internal error occurred; retry later.") -> ApiError:
    return ApiError(Code.INTERNAL_ERROR, message)
