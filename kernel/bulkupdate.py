"""Rows with different values written in one UPDATE, without Django's per-value CASE.

``QuerySet.bulk_update`` builds ``CASE WHEN id = … THEN … END`` for every field, each
branch a resolved expression: for a batch of 16 cases and 13 fields that is hundreds of
expression objects, and it was half of the worker's CPU per case (docs/benchmarks.md,
D130). On PostgreSQL this writes the same rows with one statement::

    UPDATE t SET f = v.f, … FROM (VALUES (%s::uuid, %s::jsonb, …), …) AS v (pk, f, …)
    WHERE t.pk = v.pk

Every value is prepared by its field (``get_db_prep_save``, so JSON, enums and foreign
keys go in as Django would write them) and cast to the field's column type, except
text columns, which take the value by assignment: a value too long for its column is
an error, as with ``save()``, never cut short by a cast. Other databases (SQLite, the
embedded default) use ``bulk_update``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model

# Column types that take a text value by assignment (no explicit cast: a cast to
# varchar(n) would truncate, the assignment refuses).
_TEXT_TYPES = {
    "CharField",
    "TextField",
    "SlugField",
    "EmailField",
    "URLField",
    "FileField",
    "ImageField",
}


def objects_update(objects: Sequence[Model], fields: Iterable[str]) -> int:
    """Save ``fields`` of ``objects`` (all of one model, each with its primary key) in one
    UPDATE. Returns how many rows matched."""
    if not objects:
        return 0
    model = type(objects[0])
    names = list(dict.fromkeys(fields))
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql" or not names:
        return model._default_manager.bulk_update(objects, names)  # type: ignore[attr-defined]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    columns = [pk, *(meta.get_field(name) for name in names)]
    for field in columns[1:]:
        if not getattr(field, "concrete", False) or field.many_to_many:  # type: ignore[union-attr]
            raise ValueError(f"{model.__name__}.{field.name}: not a column")
        if field.primary_key:  # type: ignore[union-attr]
            raise ValueError(f"{model.__name__}.{field.name}: the key is not updated")
    placeholders = []
    for field in columns:
        if field.get_internal_type() in _TEXT_TYPES:  # type: ignore[union-attr]
            placeholders.append("%s")
        else:
            placeholders.append(f"%s::{field.db_type(connection)}")  # type: ignore[union-attr]
    row = "(" + ", ".join(placeholders) + ")"
    quote = connection.ops.quote_name
    aliases = [f"c{index}" for index in range(len(columns))]
    params: list[Any] = []
    for obj in objects:
        for field in columns:
            value = getattr(obj, field.attname)  # type: ignore[union-attr]
            params.append(field.get_db_prep_save(value, connection))  # type: ignore[union-attr]
    table = quote(meta.db_table)
    sets = ", ".join(
        f"{quote(field.column)} = v.{alias}"  # type: ignore[union-attr]
        for field, alias in zip(columns[1:], aliases[1:], strict=True)
    )
    # Identifiers from the model's metadata, quoted; every value is a parameter.
    values = ", ".join([row] * len(objects))
    key = f"{table}.{quote(pk.column)}"
    sql = f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v ({', '.join(aliases)}) "  # noqa: S608
    sql += f"WHERE {key} = v.{aliases[0]}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
