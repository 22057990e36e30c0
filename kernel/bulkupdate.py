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
from django.db.models import Field, Model

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
        return model._default_manager.bulk_update(objects, names)
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    columns: list[Field[Any, Any]] = [pk]
    for name in names:
        field = meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete or field.many_to_many:
            raise ValueError(f"{model.__name__}.{name}: not a column")
        if field.primary_key:
            raise ValueError(f"{model.__name__}.{name}: the key is not updated")
        columns.append(field)
    placeholders = []
    for field in columns:
        if field.get_internal_type() in _TEXT_TYPES:
            placeholders.append("%s")
        else:
            placeholders.append(f"%s::{field.db_type(connection)}")
    row = "(" + ", ".join(placeholders) + ")"
    quote = connection.ops.quote_name
    aliases = [f"c{index}" for index in range(len(columns))]
    params: list[Any] = []
    for obj in objects:
        for field in columns:
            params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
    table = quote(meta.db_table)
    sets = ", ".join(
        f"{quote(str(field.column))} = v.{alias}"
        for field, alias in zip(columns[1:], aliases[1:], strict=True)
    )
    # Identifiers from the model's metadata, quoted; every value is a parameter.
    values = ", ".join([row] * len(objects))
    key = f"{table}.{quote(str(pk.column))}"
    sql = f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v ({', '.join(aliases)}) "  # noqa: S608
    sql += f"WHERE {key} = v.{aliases[0]}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
