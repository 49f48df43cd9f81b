"""The response envelope (spec 1.6): the only module that renders the wire shape of a response.

Both successes and errors go out with HTTP status 200 and ``Content-Type: application/json``
exactly: the Python SDK raises on any other status without a RequestId, and it only looks at
``Error`` when the Content-Type is exactly ``application/json`` (no ``charset`` parameter).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from anigraph.api.errors import ApiError

CONTENT_TYPE: Final = "application/json"
"""The response Content-Type, exactly; never add ``; charset=...`` (spec 1.6)."""

_RESERVED: Final = frozenset({"RequestId", "Error"})


def new_request_id() -> str:
    """A fresh RequestId (a UUID4 string, as Tencent uses)."""
    return str(uuid.uuid4())


def _render(response: dict[str, Any]) -> bytes:
    text = json.dumps(
        {"Response": response}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    return text.encode("utf-8")


def success(request_id: str, data: Mapping[str, Any]) -> bytes:
    """``{"Response": {<data>, "RequestId": id}}`` as compact UTF-8 JSON.

    ``data`` holds the action's output fields; it may not carry ``RequestId`` or ``Error``
    (an ``Error`` key would turn the success into an error for the SDK).
    """
    clash = _RESERVED.intersection(data)
    if clash:
        raise ValueError(f"output fields may not include {sorted(clash)}")
    return _render({**data, "RequestId": request_id})


def failure(request_id: str, error: ApiError) -> bytes:
    """``{"Response": {"Error": {"Code": ..., "Message": ...}, "RequestId": id}}``."""
    return _render(
        {"Error": {"Code": error.code, "Message": error.message}, "RequestId": request_id}
    )
