"""Why an upload was refused, as values: the API layer alone turns them into wire codes.

:class:`UploadError` is for the use cases (ApplyUpload, CommitUpload and the browser flow's
resume); ``api/upload_errors.py`` maps its :class:`Refusal` to a Tencent ``Code``.
:class:`ObjectError` is for the COS object writes; ``api/cos/errors.py`` maps its
:class:`ObjectRefusal` to a COS error code and HTTP status. The messages are for humans and
pass through unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """What was wrong with an ApplyUpload, a resume or a CommitUpload."""

    BAD_VALUE = "bad_value"
    """A parameter without a code of its own is out of range (name, context, priority...)."""
    MEDIA_TYPE = "media_type"
    COVER_TYPE = "cover_type"
    EXPIRE_TIME = "expire_time"
    SESSION_CONTEXT = "session_context"
    PROCEDURE = "procedure"
    """The named task flow does not exist (at ApplyUpload, or no longer at the commit)."""
    CLASS_ID = "class_id"
    SESSION = "session"
    """The VodSessionKey is unknown, foreign, expired, committed or being committed."""
    COVER_NOT_IMAGE = "cover_not_image"
    NOTHING_UPLOADED = "nothing_uploaded"
    NOT_MEDIA = "not_media"
    VANISHED = "vanished"
    """The published object disappeared during the commit (an internal failure)."""


class UploadError(Exception):
    """A refused upload use case: the :class:`Refusal` and a message for the caller."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class ObjectRefusal(StrEnum):
    """What was wrong with a COS object operation."""

    NO_SUCH_UPLOAD = "no_such_upload"
    TOO_MANY_UPLOADS = "too_many_uploads"
    TOO_LARGE = "too_large"
    EMPTY_PART_LIST = "empty_part_list"
    PART_ORDER = "part_order"
    INVALID_PART = "invalid_part"
    PART_TOO_SMALL = "part_too_small"
    SESSION_CLOSED = "session_closed"
    """The upload session was committed or expired while the object was being written."""


class ObjectError(Exception):
    """A refused COS object operation: the :class:`ObjectRefusal` and a message."""

    def __init__(self, reason: ObjectRefusal, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


def too_large(max_upload_bytes: int) -> ObjectError:
    """An object (or its parts together) over the ``max_upload_bytes`` cap."""
    return ObjectError(
        ObjectRefusal.TOO_LARGE,
        f"Your proposed upload exceeds the maximum allowed object size of "
        f"{max_upload_bytes} bytes.",
    )
