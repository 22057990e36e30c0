"""Keyset cursors: an opaque, signed position in a list ordered by (a column, the id).

A cursor names the last row a page ended on (``value``, ``id``), the ordering it was made
for and the direction to read in. Reading "rows after this position" with a ``WHERE``
on the ordering's columns is stable when rows are inserted (a new row never shifts the
pages already read, unlike an offset) and costs the same on the thousandth page as on the
first. The cursor is signed, so a changed or made-up cursor is a 400, not a wrong page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from kernel.errors import InvalidInput

_SALT = "loopgate.kernel.cursor"
MAX_CURSOR_LENGTH = 1000


@dataclass(frozen=True)
class Cursor:
    """A position: the ordering it belongs to, the row's ordering value (ISO text or
    ``None``), its id, and whether to read backwards (a "previous" link)."""

    ordering: str
    value: str | None
    id: str
    backwards: bool = False


def cursor_encode(cursor: Cursor) -> str:
    payload = [cursor.ordering, cursor.value, cursor.id, 1 if cursor.backwards else 0]
    return signing.dumps(payload, salt=_SALT, compress=True)


def cursor_decode(raw: str, *, ordering: str, name: str = "cursor") -> Cursor:
    """The cursor in ``raw``; a 400 naming ``name`` if it was altered, is not a cursor, or
    was made for another ordering than ``ordering``."""
    if len(raw) > MAX_CURSOR_LENGTH:
        raise InvalidInput(f"{name}: not a valid cursor", field=name)
    try:
        payload = signing.loads(raw, salt=_SALT)
    except signing.BadSignature as exc:
        raise InvalidInput(
            f"{name}: not a valid cursor (use the next/previous links as given)", field=name
        ) from exc
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or not isinstance(payload[0], str)
        or not (payload[1] is None or isinstance(payload[1], str))
        or not isinstance(payload[2], str)
        or payload[3] not in (0, 1)
    ):
        raise InvalidInput(f"{name}: not a valid cursor", field=name)
    if payload[0] != ordering:
        raise InvalidInput(
            f"{name}: this cursor belongs to ordering {payload[0]!r}, not {ordering!r}",
            field=name,
        )
    return Cursor(ordering=payload[0], value=payload[1], id=payload[2], backwards=payload[3] == 1)
