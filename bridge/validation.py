r"""A small JSON Schema checker for the subset the OpenAPI document uses.

Bodies and query strings are checked against the schemas of the operation
they were sent to, so what the document promises is what the server
enforces. Supported keywords: ``type`` (one or a list, ``"null"`` included),
``properties``, ``required``, ``additionalProperties: false``, ``enum``,
``minLength``/``maxLength``/``pattern`` on strings, ``minimum``/``maximum``
on numbers, ``items``/``minItems``/``maxItems``/``uniqueItems`` on arrays.
Anything else in a schema is documentation only.

Two rules hold for every string whatever its schema says, because the stores
cannot take them: no NUL character (PostgreSQL text refuses it) and no lone
surrogate (``"\ud800"`` is valid JSON but cannot be encoded as UTF-8).

The first violation raises ``ValidationError`` naming the field as a dotted
path (``identity.kind``, ``scopes[2]``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["ValidationError", "parse_json", "parse_query_value", "validate"]

Schema = Mapping[str, Any]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}
_INTEGER = re.compile(r"-?[0-9]{1,19}")


class ValidationError(ValueError):
    """Input that does not match its schema; ``field`` says where."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _reject_constant(name: str) -> float:
    # Python's json accepts NaN and Infinity; JSON does not, nor do the stores.
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    """Decode a request body as strict JSON (UTF-8, no NaN/Infinity).

    Raises:
        ValidationError: with ``field`` None and the parser's reason.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(None, f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            None, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ValidationError(None, f"malformed JSON: {exc}") from None


def _types_of(schema: Schema) -> list[str]:
    declared = schema.get("type")
    if declared is None:
        return []
    return [declared] if isinstance(declared, str) else list(declared)


def _matches_type(value: object, type_name: str) -> bool:
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[type_name])


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


@lru_cache(maxsize=256)
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate(value: object, schema: Schema, path: str = "") -> None:
    """Check ``value`` against ``schema``; raise ``ValidationError`` at the first violation."""
    where = path or None
    types = _types_of(schema)
    if types and not any(_matches_type(value, name) for name in types):
        expected = " or ".join(types)
        raise ValidationError(where, f"must be {expected}, not {_describe(value)}")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(json.dumps(choice) for choice in schema["enum"])
        raise ValidationError(where, f"must be one of {choices}")
    if isinstance(value, str):
        _validate_string(value, schema, where)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, where)
    elif isinstance(value, list):
        _validate_array(value, schema, path)
    elif isinstance(value, dict):
        _validate_object(value, schema, path)


def _validate_string(value: str, schema: Schema, where: str | None) -> None:
    if "\x00" in value:
        raise ValidationError(where, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(where, "must be valid Unicode (no lone surrogates)") from None
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise ValidationError(where, f"must be at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ValidationError(where, f"must be at most {schema['maxLength']} characters")
    if "pattern" in schema and _pattern(schema["pattern"]).search(value) is None:
        raise ValidationError(where, f"must match {schema['pattern']}")


def _validate_number(value: float, schema: Schema, where: str | None) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(where, "must be a finite number")
    if "minimum" in schema and value < schema["minimum"]:
        raise ValidationError(where, f"must be at least {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise ValidationError(where, f"must be at most {schema['maximum']}")


def _validate_array(value: list[Any], schema: Schema, path: str) -> None:
    where = path or None
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise ValidationError(where, f"must have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise ValidationError(where, f"must have at most {schema['maxItems']} items")
    items = schema.get("items")
    if items is not None:
        for index, item in enumerate(value):
            validate(item, items, f"{path}[{index}]")
    if schema.get("uniqueItems"):
        seen: list[str] = []
        for index, item in enumerate(value):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                raise ValidationError(f"{path}[{index}]", "repeats an earlier item")
            seen.append(key)


def _validate_object(value: dict[str, Any], schema: Schema, path: str) -> None:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise ValidationError(_join(path, name), "is required")
    if schema.get("additionalProperties") is False:
        for name in value:
            if name not in properties:
                raise ValidationError(_join(path, name), "is not a known field")
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], _join(path, name))


def parse_query_value(raw: str, schema: Schema, name: str) -> object:
    """Convert one query or path parameter to its schema's type, then validate it."""
    types = _types_of(schema)
    value: object = raw
    if "integer" in types:
        if _INTEGER.fullmatch(raw) is None:
            raise ValidationError(name, "must be an integer")
        value = int(raw)
    elif "number" in types:
        try:
            value = float(raw)
        except ValueError:
            raise ValidationError(name, "must be a number") from None
    elif "boolean" in types:
        if raw not in ("true", "false"):
            raise ValidationError(name, "must be true or false")
        value = raw == "true"
    validate(value, schema, name)
    return value
