"""COS error codes: the HTTP status of each, and the one mapping of the services' refusals."""

from __future__ import annotations

from typing import Final

from anigraph.services.uploads.errors import ObjectError, ObjectRefusal

STATUS: Final = {
    "AccessDenied": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "RequestTimeTooSkewed": 403,
    "NoSuchUpload": 404,
    "NoSuchKey": 404,
    "MethodNotAllowed": 405,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InvalidArgument": 400,
    "InvalidDigest": 400,
    "BadDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRequest": 400,
    "MalformedXML": 400,
    "InternalError": 500,
}

CODES: Final[dict[ObjectRefusal, str]] = {
    ObjectRefusal.NO_SUCH_UPLOAD: "NoSuchUpload",
    ObjectRefusal.TOO_MANY_UPLOADS: "InvalidRequest",
    ObjectRefusal.TOO_LARGE: "EntityTooLarge",
    ObjectRefusal.EMPTY_PART_LIST: "MalformedXML",
    ObjectRefusal.PART_ORDER: "InvalidPartOrder",
    ObjectRefusal.INVALID_PART: "InvalidPart",
    ObjectRefusal.PART_TOO_SMALL: "EntityTooSmall",
    ObjectRefusal.SESSION_CLOSED: "AccessDenied",
}


class CosError(Exception):
    """A COS error answer: ``code`` decides the HTTP status (:data:`STATUS`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)

    @classmethod
    def of(cls, error: ObjectError) -> CosError:
        """A service's refusal of an object operation, as COS answers it."""
        return cls(CODES[error.reason], error.message)
