"""kernel.strictjson: every refusal named, and nothing else ever escapes."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel import strictjson
from kernel.strictjson import JSONRefused, loads


def refused(text: str | bytes, **kwargs) -> str:
    with pytest.raises(JSONRefused) as info:
        loads(text, what="metadata", **kwargs)
    return info.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 32 levels"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "nested deeper than 32 levels"),
        ("[" * 100_000, "nested deeper than 32 levels"),
        ('{"a": NaN}', "nan is not a json number"),
        ('{"a": Infinity}', "infinity is not a json number"),
        ('{"a": -Infinity}', "-infinity is not a json number"),
        ('{"a": 1e400}', "out of range"),
        ('{"a": -1e400}', "out of range"),
        ('{"a": ' + "9" * 5000 + "}", "5000 digits"),
        ('{"a": 9223372036854775808}', "out of range"),
        ('{"a": "x\\u0000y"}', "nul character"),
        ('{"a\\u0000": 1}', "nul character"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ('{"a": ["\\ud800x"]}', "lone surrogate"),
        (b'{"a": "\xff"}', "not valid utf-8"),
        ('{"a": 1', "not valid json"),
        ("", "not valid json"),
        ("null", "expected a json object, not null"),
        ("1", "expected a json object, not a number"),
        ("[]", "expected a json object, not an array"),
        ('"x"', "expected a json object, not a string"),
    ],
)
def test_refusals_name_the_problem(text: str | bytes, words: str) -> None:
    message = refused(text, expect_object=True)
    assert message.startswith("metadata: ")
    assert words in message.lower(), message


def test_depth_limit_is_exact() -> None:
    inside = "[" * 31 + "]" * 31
    assert loads('{"a": ' + inside + "}", expect_object=True) == {"a": json.loads(inside)}
    assert "nested deeper" in refused('{"a": [' + inside + "]}")


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 1000 + "{" * 1000, "b": '\\"[[['})
    assert loads(text) == json.loads(text)


def test_limits_of_numbers_are_inclusive() -> None:
    assert loads('{"a": 9223372036854775807, "b": -9223372036854775808}') == {
        "a": 2**63 - 1,
        "b": -(2**63),
    }
    assert loads('{"a": 1.7976931348623157e308}')["a"] == 1.7976931348623157e308


def test_size_limit() -> None:
    assert "over the limit of 10 bytes" in refused('{"a": "long"}', max_bytes=10)


def test_paired_surrogates_are_one_character() -> None:
    assert loads('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_check_value_walks_without_recursion() -> None:
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(JSONRefused, match="nested deeper than 32"):
        strictjson.check_value({"a": deep}, what="metadata")
    with pytest.raises(JSONRefused, match="not finite"):
        strictjson.check_value({"a": math.nan}, what="metadata")
    with pytest.raises(JSONRefused, match="NUL"):
        strictjson.check_value({"a": ["\x00"]}, what="metadata")


# --- Properties ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def storable(value: object) -> None:
    """What PostgreSQL jsonb and json.dumps(allow_nan=False) accept, as UTF-8."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert "\x00" not in text
    assert "\\u0000" not in text


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_value_parses_to_storable_or_is_refused(value: object) -> None:
    text = json.dumps(value)  # may hold NaN, Infinity, \u0000, lone surrogates, big ints
    try:
        parsed = loads(text)
    except JSONRefused as exc:
        assert exc.message.startswith("body: ")
        return
    storable(parsed)
    assert json.loads(json.dumps(parsed)) == parsed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_input_never_raises_anything_else(data: bytes | str) -> None:
    try:
        parsed = loads(data)
    except JSONRefused:
        return
    storable(parsed)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["[", '{"k":']))
def test_any_depth_is_refused_or_parsed_never_a_recursion_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "0" + closer * depth
    try:
        loads(text)
    except JSONRefused as exc:
        assert depth > strictjson.MAX_DEPTH
        assert "nested deeper" in exc.message
    else:
        assert depth <= strictjson.MAX_DEPTH
