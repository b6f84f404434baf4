"""Numbers on the wire: bounded integer types and the one request decoder.

JSON Schema counts `3.0` as an integer, so an integer field must accept a whole-number float;
msgspec's strict mode refuses it and its lax mode would also take `"3"`, `"true"` and other
strings. Integer fields of requests are therefore small custom types (subclasses of `int` with
their bounds as class attributes) that msgspec hands to `dec_hook`, which takes an int or a
whole-number float within the bounds and refuses everything else. `schema_hook` describes them
in the OpenAPI document as bounded integers.

Type checkers see plain `int` (see `models.py`), so callers build requests with ints as before.
"""

from __future__ import annotations

import functools
import math
import typing
from typing import Any, ClassVar, TypeVar

import msgspec

T = TypeVar("T")

# Any duration: ten years, the largest a field accepts is a year; numbers above this bound
# (1e308...) are refused while decoding, before any arithmetic can overflow.
MAX_DURATION_S = 10 * 365 * 86_400
DURATION_PATTERN = r"^\s*(\d{1,12}(\.\d{1,9})?|\.\d{1,9})\s*(ms|s|m|h|d)?\s*$(?!\n)"
_PRIORITY_NAMES = ("critical", "high", "normal")


class WholeNumber(int):
    """An integer in [minimum, maximum]; subclasses set the bounds (see `whole`)."""

    minimum: ClassVar[int] = 0
    maximum: ClassVar[int] = 0
    description: ClassVar[str | None] = None

    @classmethod
    def accept(cls, value: object) -> WholeNumber:
        if type(value) is int and cls.minimum <= value <= cls.maximum:
            return cls(value)  # the common case, first
        number = _whole(value)
        if number < cls.minimum:
            raise ValueError(f"Expected `int` >= {cls.minimum}")
        if number > cls.maximum:
            raise ValueError(f"Expected `int` <= {cls.maximum}")
        return cls(number)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": cls.minimum, "maximum": cls.maximum}
        if cls.description:
            schema["description"] = cls.description
        return schema


def whole(minimum: int, maximum: int, description: str | None = None) -> type[WholeNumber]:
    """A WholeNumber type with these bounds (one class per bound pair)."""
    return _whole_type(minimum, maximum, description)


@functools.cache
def _whole_type(minimum: int, maximum: int, description: str | None) -> type[WholeNumber]:
    name = f"Int_{minimum}_{maximum}".replace("-", "m")
    attrs = {"minimum": minimum, "maximum": maximum, "description": description}
    return type(name, (WholeNumber,), attrs)


class PriorityValue(str):
    """A priority: its name, or its number 0-2 (a whole-number float counts); decoded as the
    name."""

    @classmethod
    def accept(cls, value: object) -> PriorityValue:
        if isinstance(value, str):
            if value not in _PRIORITY_NAMES:
                raise ValueError("Expected `critical`, `high`, `normal` or an integer 0-2")
            return cls(value)
        number = _whole(value)
        if not 0 <= number <= 2:
            raise ValueError("Expected `critical`, `high`, `normal` or an integer 0-2")
        return cls(_PRIORITY_NAMES[number])

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return {
            "anyOf": [
                {"enum": list(_PRIORITY_NAMES), "type": "string"},
                {"type": "integer", "minimum": 0, "maximum": 2},
            ],
            "description": "critical, high, normal, or 0 (critical) to 2 (normal)",
        }


def _whole(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("Expected `int`, got `bool`")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("Expected `int`, got a number with a fraction")
        return int(value)
    raise TypeError(f"Expected `int`, got `{_json_name(value)}`")


def _json_name(value: object) -> str:
    return {str: "str", list: "array", dict: "object", type(None): "null"}.get(
        type(value), type(value).__name__
    )


@functools.cache
def plain_fields(struct: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of a request type whose values decode as WholeNumber or PriorityValue."""
    return tuple(f.name for f in msgspec.structs.fields(struct) if _mentions_custom(f.type))


def _mentions_custom(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, WholeNumber | PriorityValue):
        return True
    return any(_mentions_custom(arg) for arg in typing.get_args(annotation))


def dec_hook(type_: type, value: object) -> Any:
    """msgspec's hook for the custom request types."""
    accept = getattr(type_, "accept", None)
    if accept is None:
        raise NotImplementedError(f"no decoder for {type_!r}")
    return accept(value)


def query_dec_hook(type_: type, value: object) -> Any:
    """As `dec_hook`, for query strings: a decimal string is also a number there."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and type_ is not str:
        value = int(value)
    return dec_hook(type_, value)


def schema_hook(type_: type) -> dict[str, Any]:
    """JSON Schema of the custom request types (for `msgspec.json.schema_components`)."""
    if isinstance(type_, type) and issubclass(type_, WholeNumber | PriorityValue):
        return type_.json_schema()
    raise NotImplementedError(f"no schema for {type_!r}")


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def decoder(type_: type[T]) -> msgspec.json.Decoder[T]:
    """The JSON decoder of a request type (one per type, made once)."""
    found = _DECODERS.get(type_)
    if found is None:
        found = _DECODERS[type_] = msgspec.json.Decoder(type_, dec_hook=dec_hook)
    return found


def decode_request(body: bytes, type_: type[T]) -> T:
    """Decode and validate a request body. Raises msgspec.ValidationError or DecodeError, or
    RecursionError for JSON nested too deep."""
    return decoder(type_).decode(body)


def convert_query(fields: dict[str, Any], type_: type[T]) -> T:
    """Validate query-string fields (all strings) as `type_`."""
    return msgspec.convert(fields, type_, strict=False, dec_hook=query_dec_hook)
