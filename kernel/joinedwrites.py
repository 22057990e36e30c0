"""Joined writes: the INSERTs and UPDATEs of one step sent as one statement.

A verdict that decides a case writes six rows (the lease closed, the task closed and its
event, the case decided and its event, …), each a statement and a round trip when saved
one by one. Inside ``joined()`` the services hand their writes to ``insert`` and
``update`` instead of ``save``; when the block ends they go to the database together:

* PostgreSQL: one statement, the writes joined by a data-modifying ``WITH``::

      WITH w0 AS (UPDATE review_assignment …), w1 AS (UPDATE review_task …), …
      INSERT INTO workflows_caseevent …

  Every part runs exactly once and to completion, all on one snapshot; foreign keys are
  checked at the end of the statement (or, deferred, of the transaction), by when the
  rows they point at exist.
* other databases (SQLite, the embedded default): the same statements one after the
  other, in the order they were handed over.

Each write is compiled by Django itself (field defaults, ``auto_now``, JSON, foreign
keys), as ``save`` would. The rules for code inside the block:

* a row written in the block is not in the database until the block ends: do not read
  it back there (what the code holds in memory is already up to date);
* one row is written at most once in a block (two writes of one row in one statement
  are not ordered: refused);
* no write from an ``atomic()`` nested inside the block (its savepoint could not undo a
  write sent after it: refused); open the joined block inside it instead;
* rows inserted in one block take their ids in no set order (the parts of a statement
  run in an order of PostgreSQL's choosing): order them by their ``auto_now_add``
  stamps, which are set in the order the rows were handed over;
* an inserted row needs its primary key before the block ends (a UUID, or a row whose
  id the caller does not need): ``insert`` refuses a row without one unless
  ``pk_unknown=True`` says no one will read it;
* no model signals are sent (nothing listens for these models' saves: model signals are
  reserved for the access cache, D125).

A block inside another joins it; the writes of a block that raises are dropped, an
inner block's too when the outer one goes on. Outside a block ``insert`` and ``update``
write at once. A constraint a joined write breaks raises when the block ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model, Q
from django.db.models.sql import InsertQuery, UpdateQuery
from django.db.transaction import TransactionManagementError


class _Block:
    """The writes of an open ``joined()`` block, and what guards them."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, list[Any]]] = []
        self.rows: set[tuple[str, Any]] = set()
        # How deep in atomic blocks each connection was when the block opened.
        self.depths = {alias: len(connections[alias].savepoint_ids) for alias in connections}

    def add(self, row: Model, alias: str, sql: str, params: list[Any]) -> None:
        if len(connections[alias].savepoint_ids) != self.depths.get(alias):
            # A savepoint inside the block could not undo a write sent when it ends.
            raise TransactionManagementError(
                "joined writes inside a nested atomic block: open the joined block inside it"
            )
        if row.pk is not None:
            key = (row._meta.label, row.pk)
            if key in self.rows:
                raise ValueError(f"{key[0]} {key[1]} written twice in one joined block")
            self.rows.add(key)
        self.writes.append((alias, sql, params))


_pending: ContextVar[_Block | None] = ContextVar("joined_writes", default=None)


def _alias(model: type[Model]) -> str:
    return router.db_for_write(model)


# Statements compiled once per model, database and field names (D142): Django writes
# the same SQL text for every row; only the parameters differ. An entry is the SQL, or
# None where a row's parameters did not come out as Django's own (then Django compiles
# every row, as before).
_compiled: dict[tuple[Any, ...], str | None] = {}


def _plain(value: Any) -> bool:
    """A value Django binds as a parameter (not an expression compiled into the SQL)."""
    return not hasattr(value, "resolve_expression") and not hasattr(value, "as_sql")


def _same(ours: list[Any], django: list[Any]) -> bool:
    """The parameters are Django's: equal, or (adapters such as ``Jsonb``, which do not
    compare) of one type wrapping equal objects."""
    if len(ours) != len(django):
        return False
    for mine, theirs in zip(ours, django, strict=True):
        if type(mine) is not type(theirs):
            return False
        if hasattr(mine, "obj") and not isinstance(mine, (str, bytes, int, float)):
            if mine.obj != theirs.obj:
                return False
        elif mine != theirs:
            return False
    return True


def _prepared(
    key: tuple[Any, ...],
    params: list[Any] | None,
    compile_sql: Callable[[], tuple[str, list[Any]]],
) -> tuple[str, list[Any]]:
    """The compiled SQL of ``key`` with ``params`` (a row's values, prepared as Django
    prepares them; None when one is an expression), compiling it the first time and
    checking there that Django's own parameters are the same."""
    if params is not None and key in _compiled:
        sql = _compiled[key]
        if sql is not None:
            return sql, params
    sql, django = compile_sql()
    if params is not None and key not in _compiled:
        _compiled[key] = sql if _same(params, django) else None
    return sql, django


def _insert_sql(row: Model, alias: str, *, returning: bool = False) -> tuple[str, list[Any]]:
    meta = row._meta
    fields = [
        field
        for field in meta.local_concrete_fields
        if not field.generated and (field is not meta.auto_field or row.pk is not None)
    ]
    connection = connections[alias]
    # As Model.save: ``pre_save`` sets ``auto_now`` fields and returns the value.
    values = [field.pre_save(row, True) for field in fields]
    params = None
    if all(_plain(value) for value in values):
        params = [
            field.get_db_prep_save(value, connection=connection)
            for field, value in zip(fields, values, strict=True)
        ]
        if not all(_plain(param) for param in params):
            params = None

    def compile_sql() -> tuple[str, list[Any]]:
        query = InsertQuery(type(row))
        # ``raw``: the values ``pre_save`` gave above (a second call would stamp again).
        query.insert_values(fields, [row], raw=True)
        compiler = query.get_compiler(using=alias)
        if returning:
            compiler.returning_fields = [meta.pk]
        [(sql, django)] = compiler.as_sql()
        return sql, list(django)

    key = ("insert", type(row), alias, tuple(field.attname for field in fields), returning)
    return _prepared(key, params, compile_sql)


def _update_sql(row: Model, names: Iterable[str], alias: str) -> tuple[str, list[Any]]:
    meta = row._meta
    connection = connections[alias]
    fields: list[Field[Any, Any]] = []
    for name in dict.fromkeys(names):
        field = meta.get_field(name)
        assert isinstance(field, Field), f"{name} is not a column of {meta.label}"
        fields.append(field)
    # As Model.save: ``pre_save`` sets ``auto_now`` fields and returns the value.
    values = [field.pre_save(row, False) for field in fields]
    params = None
    nulls: tuple[bool, ...] = ()
    if all(_plain(value) for value in values) and not any(
        hasattr(value, "prepare_database_save") for value in values
    ):
        prepared = [
            field.get_db_prep_save(value, connection=connection)
            for field, value in zip(fields, values, strict=True)
        ]
        # Django writes ``= NULL`` into the SQL for None: the SQL differs by which are.
        nulls = tuple(param is None for param in prepared)
        pk = meta.pk
        assert pk is not None
        params = [
            *(param for param in prepared if param is not None),
            pk.get_db_prep_value(pk.get_prep_value(row.pk), connection, prepared=True),
        ]
        if not all(_plain(param) for param in params):
            params = None

    def compile_sql() -> tuple[str, list[Any]]:
        query = UpdateQuery(type(row))
        query.add_update_fields(
            [(field, None, value) for field, value in zip(fields, values, strict=True)]
        )
        query.add_q(Q(pk=row.pk))
        sql, django = query.get_compiler(using=alias).as_sql()
        return sql, list(django)

    key = ("update", type(row), alias, tuple(field.attname for field in fields), nulls)
    return _prepared(key, params, compile_sql)


def _saved(row: Model, alias: str) -> None:
    row._state.adding = False
    row._state.db = alias


def insert(row: Model, *, pk_unknown: bool = False) -> None:
    """INSERT ``row``: now, or when the enclosing ``joined()`` block ends."""
    pending = _pending.get()
    if pending is None:
        row.save(force_insert=True)
        return
    if row.pk is None and not pk_unknown:
        raise ValueError(
            f"a {type(row).__name__} inserted in joined writes needs its primary key first"
        )
    alias = _alias(type(row))
    sql, params = _insert_sql(row, alias)
    pending.add(row, alias, sql, params)
    _saved(row, alias)


def insert_returning_key(row: Model) -> None:
    """INSERT ``row`` now and set the key the database gave it: ``save()`` for a new row
    with an auto-incremented key, its statement compiled once per shape (D142). Not
    inside a ``joined()`` block (the row would be written before the block's writes)."""
    if _pending.get() is not None:
        raise TransactionManagementError(
            "insert_returning_key writes at once: not inside a joined block"
        )
    meta = row._meta
    alias = _alias(type(row))
    connection = connections[alias]
    if (
        row.pk is not None
        or meta.pk is not meta.auto_field
        # Columns the database fills (``db_default``, generated) come back with ``save``.
        or list(meta.db_returning_fields) != [meta.pk]
        or not connection.features.can_return_columns_from_insert
    ):
        row.save(force_insert=True)
        return
    sql, params = _insert_sql(row, alias, returning=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (key,) = cursor.fetchone()
    row.pk = key
    _saved(row, alias)


def update(row: Model, fields: Iterable[str]) -> None:
    """UPDATE ``fields`` of ``row`` (an ``auto_now`` field named among them is set to
    now): now, or when the enclosing ``joined()`` block ends."""
    names = list(fields)
    if not names or row.pk is None:
        raise ValueError(f"an update of {type(row).__name__} needs its key and a field")
    pending = _pending.get()
    if pending is None:
        row.save(update_fields=names)
        return
    alias = _alias(type(row))
    sql, params = _update_sql(row, names, alias)
    pending.add(row, alias, sql, params)


def _flush(writes: list[tuple[str, str, list[Any]]]) -> None:
    by_alias: dict[str, list[tuple[str, list[Any]]]] = {}
    for alias, sql, params in writes:
        by_alias.setdefault(alias, []).append((sql, params))
    for alias, statements in by_alias.items():
        connection = connections[alias]
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql" or len(statements) == 1:
                for sql, params in statements:
                    cursor.execute(sql, params)
                continue
            *parts, (last_sql, last_params) = statements
            joined = ", ".join(f"w{k} AS ({sql})" for k, (sql, _params) in enumerate(parts))
            params = [value for _sql, part in parts for value in part]
            cursor.execute(f"WITH {joined} {last_sql}", [*params, *last_params])


@contextmanager
def joined() -> Iterator[None]:
    """Collect the ``insert`` and ``update`` calls of the block; send them when it ends.

    Call inside the transaction the writes belong to.
    """
    outer = _pending.get()
    if outer is not None:
        # Joins the outer block; what it handed over is dropped if it raises.
        mark, rows = len(outer.writes), set(outer.rows)
        try:
            yield
        except BaseException:
            del outer.writes[mark:]
            outer.rows = rows
            raise
        return
    block = _Block()
    token = _pending.set(block)
    try:
        yield
    finally:
        _pending.reset(token)
    _flush(block.writes)
