"""Strict JSON: the one way request bodies and case metadata are parsed.

Python's ``json`` accepts more than the platform can store or process: ``NaN`` and
``Infinity``, ``1e400`` (which becomes ``inf``), integers of any size (a 5,000-digit one
raises a ``ValueError`` that is not a ``JSONDecodeError``), NUL characters (PostgreSQL's
``jsonb`` refuses ``\\u0000``), lone surrogates (``"\\ud800"``, which cannot be encoded as
UTF-8), and nesting deep enough to raise ``RecursionError`` in the parser or later in
whatever walks the value. ``loads`` refuses all of them with a ``JSONRefused`` whose
message names what is wrong; every value it returns can be passed to ``json.dumps`` and
stored in ``jsonb`` as it is, on SQLite and PostgreSQL alike.

Depth is measured by a scan of the text *before* parsing, so a document nested 100,000
deep is refused without recursion. Nothing here imports Django: callers turn
``JSONRefused`` into their own error (``kernel.parsers``, ``workflows.services``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_INT_DIGITS = 20
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

# A JSON string token, or one bracket. Strings are skipped whole, so brackets inside
# them do not count; the scan is in C except for one step per bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRefused(ValueError):
    """The text is not JSON the platform accepts. ``message`` is meant for the caller."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _depth_check(text: str, *, what: str, max_depth: int) -> None:
    depth = 0
    for match in _TOKENS.finditer(text):
        piece = match.group()
        if piece in ("[", "{"):
            depth += 1
            if depth > max_depth:
                raise JSONRefused(f"{what}: nested deeper than {max_depth} levels")
        elif piece in ("]", "}"):
            depth -= 1


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRefused(f"the number {text[:40]} is out of range")
    return value


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise JSONRefused(f"an integer with {digits} digits is out of range (64-bit at most)")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise JSONRefused(f"the integer {text} is out of range (64-bit at most)")
    return value


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    if _LONE_SURROGATE.search(text):
        return "a lone surrogate (invalid Unicode)"
    return None


def _where(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "the top level"


def check_value(value: Any, *, what: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a Python value (already parsed, or built by a caller) that ``loads`` would.

    Walks iteratively: a value nested beyond ``max_depth`` is refused, not recursed into.
    """
    stack: list[tuple[Any, list[str | int], int]] = [(value, [], 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth + 1 > max_depth:
                raise JSONRefused(f"{what}: nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise JSONRefused(f"{what}: object keys must be strings")
                    problem = _string_problem(key)
                    if problem:
                        raise JSONRefused(f"{what}: {problem} in a key at {_where(path)}")
                    stack.append((child, [*path, key], depth + 1))
            else:
                stack.extend((child, [*path, i], depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                raise JSONRefused(f"{what}: {problem} in the string at {_where(path)}")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise JSONRefused(f"{what}: an integer at {_where(path)} is out of range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JSONRefused(f"{what}: a number at {_where(path)} is not finite")
        else:
            raise JSONRefused(f"{what}: {type(item).__name__} is not a JSON value")


def loads(
    data: str | bytes,
    *,
    what: str = "body",
    max_depth: int = MAX_DEPTH,
    max_bytes: int | None = None,
    expect_object: bool = False,
) -> Any:
    """Parse ``data`` (bytes must be UTF-8) or raise ``JSONRefused`` naming the problem.

    ``what`` starts every message (``metadata: nested deeper than 32 levels``).
    """
    if max_bytes is not None:
        size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise JSONRefused(f"{what}: {size} bytes is over the limit of {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONRefused(f"{what}: not valid UTF-8 (byte {exc.start})") from None
    else:
        text = data
    problem = _string_problem(text)
    if problem:
        # Raw NULs and surrogates in the text; escaped ones are caught after parsing.
        raise JSONRefused(f"{what}: {problem}")
    _depth_check(text, what=what, max_depth=max_depth)
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except JSONRefused as exc:
        raise JSONRefused(f"{what}: {exc.message}") from None
    except json.JSONDecodeError as exc:
        raise JSONRefused(
            f"{what}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise JSONRefused(f"{what}: not valid JSON ({type(exc).__name__})") from None
    check_value(value, what=what, max_depth=max_depth)
    if expect_object and not isinstance(value, dict):
        raise JSONRefused(f"{what}: expected a JSON object, not {json_type(value)}")
    return value


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
