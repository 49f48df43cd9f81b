"""Task failure codes (Tencent's ``ErrCodeExt`` values) as exceptions with stable codes."""

from __future__ import annotations

from enum import StrEnum


class ErrCodeExt(StrEnum):
    """Video-processing failure codes, spec 7.3."""

    INVALID_INPUT = "InvalidInput"
    INVALID_TIME_OFFSET = "InvalidInput.InvalidTimeOffset"
    DEFINITION_NOT_EXIST = "InvalidInput.DefinitionNotExist"
    CONFIGURATION_UNSUPPORTED = "InvalidInput.ConfigurationUnsupported"
    RESULT_FILE_TOO_LARGE = "InvalidInput.ResultFileSizeTooLarge"
    SOURCE_FILE_ERROR = "SourceFileError"
    NO_VIDEO_MEDIA = "SourceFileError.NoVideoMedia"
    NO_VIDEO_RESOLUTION = "SourceFileError.NoVideoResolution"
    CONTENT_MALFORMED = "SourceFileError.ContentMalformed"
    CONTENT_UNSUPPORTED = "SourceFileError.ContentUnsupported"
    DOWNLOAD_NOT_ACCESSIBLE = "SourceFileError.DownloadNotAccessible"
    INTERNAL_ERROR = "InternalError"

    @property
    def legacy_code(self) -> int:
        """Tencent's numeric ``ErrCode`` family for this code."""
        if self.value.startswith("InvalidInput"):
            return 40000
        if self.value.startswith("SourceFileError"):
            return 60000
        return 70000

    @property
    def retryable(self) -> bool:
        """Only internal failures are worth another attempt; bad input never is."""
        return self is ErrCodeExt.INTERNAL_ERROR


class TaskError(Exception):
    """A failure with a Tencent ``ErrCodeExt`` and a human message."""

    def __init__(self, code: ErrCodeExt, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
