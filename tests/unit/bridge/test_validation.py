"""The schema checker: every violation names its field; JSON is parsed strictly."""

from __future__ import annotations

import pytest

from bridge.validation import ValidationError, parse_json, parse_query_value, validate

MESSAGE = {
    "type": "object",
    "required": ["text", "identity"],
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 10, "pattern": r"\S"},
        "identity": {
            "type": "object",
            "required": ["kind"],
            "additionalProperties": False,
            "properties": {"kind": {"type": "string", "enum": ["phone", "email"]}},
        },
        "count": {"type": "integer", "minimum": 1, "maximum": 5},
        "ratio": {"type": ["number", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": True},
    },
}


def good(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {"text": "hi", "identity": {"kind": "phone"}}
    body.update(changes)
    return body


def error_of(value: object, schema: dict[str, object] = MESSAGE) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate(value, schema)
    return caught.value


def test_a_valid_body_passes() -> None:
    validate(good(count=3, ratio=None, tags=["a", "b"]), MESSAGE)
    validate(good(ratio=0.5), MESSAGE)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"identity": {"kind": "phone"}}, "text", "is required"),
        (good(extra=1), "extra", "not a known field"),
        (good(text=5), "text", "must be string, not a number"),
        (good(text=""), "text", "at least 1"),
        (good(text="x" * 11), "text", "at most 10"),
        (good(text="   "), "text", "must match"),
        (good(text="a\x00b"), "text", "NUL"),
        (good(text="\ud800"), "text", "surrogate"),
        (good(identity={"kind": "fax"}), "identity.kind", 'one of "phone", "email"'),
        (good(identity={"kind": "phone", "x": 1}), "identity.x", "not a known field"),
        (good(identity=[]), "identity", "must be object, not an array"),
        (good(count=True), "count", "must be integer, not a boolean"),
        (good(count=2.5), "count", "must be integer"),
        (good(count=0), "count", "at least 1"),
        (good(count=6), "count", "at most 5"),
        (good(ratio="0.5"), "ratio", "must be number or null"),
        (good(ratio=float("inf")), "ratio", "finite"),
        (good(tags=["a", 1]), "tags[1]", "must be string"),
        (good(tags=["a", "a"]), "tags[1]", "repeats"),
        (good(tags=["a", "b", "c"]), "tags", "at most 2 items"),
    ],
)
def test_each_violation_names_its_field(body: object, field: str, words: str) -> None:
    error = error_of(body)
    assert error.field == field
    assert words in error.message


def test_a_body_that_is_not_an_object_has_no_field() -> None:
    error = error_of(["text"])
    assert error.field is None
    assert "must be object" in error.message


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"a": ', "malformed JSON"),
        (b"{'a': 1}", "malformed JSON"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": Infinity}', "Infinity is not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
    ],
)
def test_bad_json_is_refused_with_the_reason(raw: bytes, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_json(raw)
    assert words in caught.value.message


def test_json_with_escapes_parses() -> None:
    assert parse_json(b'{"a": "\\u00e9\\n", "b": [1, 2.5, null, true]}') == {
        "a": "é\n",
        "b": [1, 2.5, None, True],
    }


@pytest.mark.parametrize(
    ("raw", "schema", "expected"),
    [
        ("42", {"type": "integer", "minimum": 1}, 42),
        ("-3", {"type": "integer"}, -3),
        ("1.5", {"type": "number"}, 1.5),
        ("true", {"type": "boolean"}, True),
        ("queued", {"type": "string", "enum": ["queued"]}, "queued"),
    ],
)
def test_query_values_convert_to_their_schema_type(
    raw: str, schema: dict[str, object], expected: object
) -> None:
    assert parse_query_value(raw, schema, "p") == expected


@pytest.mark.parametrize(
    ("raw", "schema", "words"),
    [
        ("4x", {"type": "integer"}, "must be an integer"),
        ("1" * 25, {"type": "integer"}, "must be an integer"),
        ("0", {"type": "integer", "minimum": 1}, "at least 1"),
        ("nan", {"type": "number"}, "finite"),
        ("soon", {"type": "number"}, "must be a number"),
        ("yes", {"type": "boolean"}, "true or false"),
        ("open", {"type": "string", "enum": ["queued"]}, "one of"),
    ],
)
def test_bad_query_values_name_the_parameter(
    raw: str, schema: dict[str, object], words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_query_value(raw, schema, "limit")
    assert caught.value.field == "limit"
    assert words in caught.value.message
