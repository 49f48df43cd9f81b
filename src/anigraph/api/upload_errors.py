"""The one mapping of upload refusals to Tencent codes (spec 2.5, 7.4).

Used by the ApplyUpload/CommitUpload actions and by the browser/mobile upload endpoint
(``api/ugc.py``), which renders the same code in its own numeric terms.
"""

from __future__ import annotations

from typing import Final

from anigraph.api.errors import ApiError, Code
from anigraph.services.uploads import Refusal, UploadError

CODES: Final[dict[Refusal, Code]] = {
    Refusal.BAD_VALUE: Code.INVALID_PARAMETER_VALUE,
    Refusal.MEDIA_TYPE: Code.INVALID_PARAMETER_VALUE_MEDIA_TYPE,
    Refusal.COVER_TYPE: Code.INVALID_PARAMETER_VALUE_COVER_TYPE,
    Refusal.EXPIRE_TIME: Code.INVALID_PARAMETER_VALUE_EXPIRE_TIME,
    Refusal.SESSION_CONTEXT: Code.INVALID_PARAMETER_VALUE_SESSION_CONTEXT_TOO_LONG,
    Refusal.PROCEDURE: Code.INVALID_PARAMETER_VALUE_PROCEDURE,
    Refusal.CLASS_ID: Code.INVALID_PARAMETER_VALUE_CLASS_ID,
    Refusal.SESSION: Code.INVALID_PARAMETER_VALUE_VOD_SESSION_KEY,
    Refusal.COVER_NOT_IMAGE: Code.FAILED_OPERATION_COVER_TYPE,
    Refusal.NOTHING_UPLOADED: Code.RESOURCE_NOT_FOUND,
    Refusal.NOT_MEDIA: Code.FAILED_OPERATION,
    Refusal.VANISHED: Code.INTERNAL_ERROR,
}


def api_error(error: UploadError) -> ApiError:
    """The refusal as the API answers it: its Tencent code and the service's message."""
    return ApiError(CODES[error.reason], error.message)
