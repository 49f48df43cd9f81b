"""Action parameters: rebuilding the flattened form (spec 1.5) and a small declarative schema.

Flattened input (GET queries and every legacy-signed request) arrives as ``key=value`` pairs
whose keys join object members with ``.`` and use zero-based indices for array elements::

    MediaProcessTask.AnimatedGraphicTaskSet.0.Definition=20000

``unflatten`` rebuilds the nested structure with every leaf still a string. ``parse`` then checks
the parameters against a schema and coerces them: from strings when ``flattened`` is true
(``"75.0"`` -> ``75.0``), by strict JSON type otherwise (a string is not an integer, nor is a
boolean).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

from anigraph.api.errors import (
    Code,
    invalid_parameter,
    invalid_parameter_value,
    missing_parameter,
    quote,
    unknown_parameter,
)

MAX_INDEX: Final = 1000
"""The largest array index accepted in a flattened key."""

MAX_DEPTH: Final = 16
"""The most ``.``-separated segments accepted in a flattened key."""

# ---------------------------------------------------------------------------------------------
# unflatten


class _Branch:
    """An object (member names) or array (integer indices) node while rebuilding."""

    __slots__ = ("children", "is_array")

    def __init__(self, is_array: bool) -> None:
        self.is_array = is_array
        self.children: dict[str | int, _Branch | str] = {}


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _segment_key(segment: str, key: str) -> str | int:
    if not segment:
        raise invalid_parameter(f"The parameter name {quote(key)} has an empty segment.")
    if not _is_index(segment):
        return segment
    if len(segment) > 1 and segment[0] == "0":
        raise invalid_parameter(f"The parameter name {quote(key)} has an index with leading zeros.")
    index = int(segment) if len(segment) <= 7 else MAX_INDEX + 1
    if index > MAX_INDEX:
        raise invalid_parameter(
            f"The parameter name {quote(key)} has an array index above {MAX_INDEX}."
        )
    return index


def unflatten(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild nested objects and arrays from flattened ``(key, value)`` pairs.

    Arrays must use contiguous indices from 0. A key given twice, a key used both as a value and
    as a container (``A=1`` with ``A.B=2``), a node used both as an array and as an object, a gap
    in the indices, an index above ``MAX_INDEX`` or a key deeper than ``MAX_DEPTH`` raises
    ``InvalidParameter``. Leaves stay strings; object members keep their first-seen order.
    """
    root = _Branch(is_array=False)
    for key, value in pairs:
        segments = key.split(".")
        if len(segments) > MAX_DEPTH:
            raise invalid_parameter(
                f"The parameter name {quote(key)} is nested deeper than {MAX_DEPTH} levels."
            )
        node = root
        for position, segment in enumerate(segments):
            name = _segment_key(segment, key)
            if isinstance(name, int) != node.is_array:
                where = ".".join(segments[:position]) or "(top level)"
                raise invalid_parameter(
                    f"The parameter {quote(where)} is used both as an array and as an object."
                    if position
                    else f"The parameter name {quote(key)} may not start with an array index."
                )
            child = node.children.get(name)
            if position == len(segments) - 1:
                if isinstance(child, _Branch):
                    raise invalid_parameter(
                        f"The parameter {quote(key)} is given both as a value and as a container."
                    )
                if child is not None:
                    raise invalid_parameter(f"The parameter {quote(key)} is given more than once.")
                node.children[name] = value
            elif isinstance(child, str):
                raise invalid_parameter(
                    f"The parameter {quote('.'.join(segments[: position + 1]))} is given both as "
                    f"a value and as a container (see {quote(key)})."
                )
            else:
                if child is None:
                    child = _Branch(is_array=_is_index(segments[position + 1]))
                    node.children[name] = child
                node = child
    result = _finish(root, "")
    assert isinstance(result, dict)
    return result


def _finish(node: _Branch, path: str) -> dict[str, Any] | list[Any]:
    def value(key: str | int, child: _Branch | str) -> Any:
        return child if isinstance(child, str) else _finish(child, f"{path}{key}.")

    if not node.is_array:
        return {str(key): value(key, child) for key, child in node.children.items()}
    indices = sorted(node.children, key=int)
    for expected, index in enumerate(indices):
        if index != expected:
            raise invalid_parameter(
                f"The array {quote(path.rstrip('.'))} has no element {expected}: "
                "indices must run from 0 without gaps."
            )
    return [value(index, node.children[index]) for index in indices]


# ---------------------------------------------------------------------------------------------
# schema


@dataclass(frozen=True, slots=True)
class Scalar:
    """A wire scalar type (spec conventions): JSON integer, JSON number or JSON string."""

    kind: Literal["uint64", "int64", "float", "string"]


UINT64: Final = Scalar("uint64")
INT64: Final = Scalar("int64")
FLOAT: Final = Scalar("float")
STRING: Final = Scalar("string")


@dataclass(frozen=True, slots=True)
class Array:
    """``[item]``: a JSON array, or indices ``0..n-1`` in flattened form."""

    item: Scalar | Array | Object


@dataclass(frozen=True, slots=True)
class Object:
    """A JSON object; members not in ``fields`` raise ``UnknownParameter`` unless ignored."""

    fields: Mapping[str, Field]
    ignore_unknown: bool = False


class _Missing(Enum):
    MISSING = "MISSING"


MISSING: Final = _Missing.MISSING
"""``Field.default`` when a field has no default: an absent optional field is left out."""


@dataclass(frozen=True, slots=True)
class Field:
    """One parameter: its type, whether it is required, its default and its value rules.

    ``code`` is the error code for a bad value, e.g. ``InvalidParameterValue.Fps``; for an array
    field it also covers the array's items. ``minimum``/``maximum``/``choices`` apply to the
    scalar value (or to each scalar item of an array), ``max_length`` to a string's characters
    and ``max_items`` to an array's length.
    """

    type: Scalar | Array | Object
    required: bool = False
    default: Any = MISSING
    code: str = Code.INVALID_PARAMETER_VALUE
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    max_items: int | None = None
    choices: frozenset[str] | None = None


SUB_APP_ID: Final = Field(UINT64, code=Code.INVALID_PARAMETER_VALUE_SUB_APP_ID)
"""``SubAppId``, accepted by every action: added to a schema's top level unless it declares it."""

_UINT64_MAX: Final = 2**64 - 1
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_INTEGER_TEXT: Final = re.compile(r"-?[0-9]{1,20}")
_FLOAT_TEXT: Final = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,4})?")


def parse(schema: Object, params: Mapping[str, Any], *, flattened: bool = False) -> dict[str, Any]:
    """Check ``params`` against ``schema``; return the coerced values with defaults applied.

    ``flattened`` says the parameters came from a query or form (``Verified.flattened``): scalar
    leaves are then strings and are converted. Otherwise they came from a JSON body and must
    already have the right JSON type. Absent or ``null`` optional fields get their default, or are
    left out when they have none. Errors: ``UnknownParameter`` for a member the schema does not
    know (``SubAppId`` is always known), ``MissingParameter`` naming the full path of a missing
    required field, and the field's ``code`` for a bad value.
    """
    fields = schema.fields
    if "SubAppId" not in fields:
        fields = {**fields, "SubAppId": SUB_APP_ID}
    return _object(Object(fields, schema.ignore_unknown), params, "", flattened)


def _object(spec: Object, value: Mapping[str, Any], prefix: str, flattened: bool) -> dict[str, Any]:
    if not spec.ignore_unknown:
        for name in value:
            if name not in spec.fields:
                raise unknown_parameter(f"{prefix}{name}")
    out: dict[str, Any] = {}
    for name, field in spec.fields.items():
        raw = value.get(name)
        path = f"{prefix}{name}"
        if raw is None:
            if field.required:
                raise missing_parameter(path)
            if field.default is not MISSING:
                out[name] = copy.deepcopy(field.default)
            continue
        out[name] = _value(field, field.type, raw, path, flattened)
    return out


def _value(field: Field, kind: Scalar | Array | Object, raw: Any, path: str, flat: bool) -> Any:
    if isinstance(kind, Object):
        if not isinstance(raw, Mapping):
            raise invalid_parameter_value(path, "expected an object", field.code)
        return _object(kind, raw, f"{path}.", flat)
    if isinstance(kind, Array):
        if not isinstance(raw, list):
            raise invalid_parameter_value(path, "expected an array", field.code)
        if field.max_items is not None and len(raw) > field.max_items:
            raise invalid_parameter_value(
                path, f"at most {field.max_items} items are allowed", field.code
            )
        return [_value(field, kind.item, item, f"{path}.{i}", flat) for i, item in enumerate(raw)]
    value = _scalar(kind, raw, flat)
    if value is None:
        raise invalid_parameter_value(
            path, f"expected {_EXPECTED[kind.kind]}, got {_describe(raw)}", field.code
        )
    _check_rules(field, value, path)
    return value


_EXPECTED: Final = {
    "uint64": "an unsigned integer",
    "int64": "an integer",
    "float": "a finite number",
    "string": "a string",
}


def _describe(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, str):
        return quote(raw)
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int | float):
        return f"the number {raw!r}"[:120]
    if isinstance(raw, list):
        return "an array"
    if isinstance(raw, Mapping):
        return "an object"
    return type(raw).__name__


def _scalar(kind: Scalar, raw: Any, flattened: bool) -> int | float | str | None:
    """The coerced value, or None when ``raw`` does not fit ``kind``."""
    if kind.kind == "string":
        return raw if isinstance(raw, str) else None
    if kind.kind == "float":
        if flattened:
            if not isinstance(raw, str) or not _FLOAT_TEXT.fullmatch(raw):
                return None
            number = float(raw)
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            try:
                number = float(raw)
            except OverflowError:
                return None
        else:
            return None
        return number if math.isfinite(number) else None
    if flattened:
        if not isinstance(raw, str) or not _INTEGER_TEXT.fullmatch(raw):
            return None
        integer = int(raw)
    elif type(raw) is int:
        integer = raw
    else:
        return None
    low, high = (0, _UINT64_MAX) if kind.kind == "uint64" else (_INT64_MIN, _INT64_MAX)
    return integer if low <= integer <= high else None


def _check_rules(field: Field, value: int | float | str, path: str) -> None:
    if isinstance(value, str):
        if field.max_length is not None and len(value) > field.max_length:
            raise invalid_parameter_value(
                path, f"at most {field.max_length} characters are allowed", field.code
            )
        if field.choices is not None and value not in field.choices:
            allowed = ", ".join(sorted(field.choices))
            raise invalid_parameter_value(path, f"must be one of: {allowed}", field.code)
        return
    if field.minimum is not None and value < field.minimum:
        raise invalid_parameter_value(path, f"must be at least {field.minimum:g}", field.code)
    if field.maximum is not None and value > field.maximum:
        raise invalid_parameter_value(path, f"must be at most {field.maximum:g}", field.code)
