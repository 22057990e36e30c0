"""Numeric bounds of the database columns, for input validation and the OpenAPI schema.

Every number the API takes is checked against the column it ends in (or the row id it
looks up) before it reaches the database: PostgreSQL answers an out-of-range integer
with an error, SQLite with an ``OverflowError``; either would be a 500.
"""

from __future__ import annotations

from typing import Any

from kernel.errors import InvalidInput

INT32_MAX = 2_147_483_647  # PositiveIntegerField, IntegerField
INT16_MAX = 32_767  # PositiveSmallIntegerField
ID_MAX = 2**63 - 1  # BigAutoField ids


def bounded_int(raw: Any, *, name: str, minimum: int, maximum: int) -> int:
    """A whole number given as text (a query parameter or a path part) within bounds."""
    text = str(raw).strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 20:
        raise InvalidInput(f"{name}: must be a whole number", field=name)
    value = int(text)
    if not minimum <= value <= maximum:
        raise InvalidInput(f"{name}: must be between {minimum} and {maximum}", field=name)
    return value


def integer_schema(minimum: int, maximum: int) -> dict[str, Any]:
    """The OpenAPI schema of a bounded integer query parameter."""
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


ID_SCHEMA = integer_schema(1, ID_MAX)
