"""Prepared querysets: compiled to SQL once, run again with other values.

The ORM compiles a queryset to SQL on every run, and for the hot paths' queries (a
task locked with its case, a claim with its case, prediction and version) the
compilation costs more CPU than the database spends answering: 1.5 to 4 ms each on the
2-core benchmark machine, against well under a millisecond of execution (D141).

``Prepared(build, name=marker, …)`` builds the queryset once with the markers in place
of the values, compiles it, and notes where each marker sits among the statement's
parameters. ``first(name=value, …)`` runs the same SQL with the values in those places
and turns the rows into model instances with Django's own ``ModelIterable`` (related
objects from ``select_related``, annotations, converters: as the queryset would). So:

* the queryset's shape must not depend on the values (no ``__in`` lists, no ``None``
  that turns ``=`` into ``IS NULL``): only what is a bound parameter may vary;
* each value is given as it goes to the database (a field's prepared value: an id as an
  int), except a datetime, which is adapted as a DateTimeField's lookup would
  (``connection.ops.adapt_datetimefield_value``; a build that puts a marker datetime
  into raw SQL adapts it the same way);
* a marker is a value its field takes (Django compiles a value out of a field's range,
  such as a negative number for a positive field, to an empty query) and no other
  parameter of the statement has (checked when compiling);
* an integer value outside the 64-bit range matches nothing (``first`` returns None
  without asking the database), as Django's own integer lookups answer.

Compiled once per database alias and process; the compiled statement is only read
afterwards, so threads may share it (each run uses its own thread's connection).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

_INT64 = (-(2**63), 2**63 - 1)


def _adapted(value: Any, alias: str) -> Any:
    """A datetime as the database takes it (what a DateTimeField's lookup sends)."""
    if isinstance(value, datetime):
        return connections[alias].ops.adapt_datetimefield_value(value)
    return value


class _Compiled:
    def __init__(self, queryset: QuerySet[Any], alias: str, markers: dict[str, Any]) -> None:
        query = queryset.query
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        positions: dict[str, list[int]] = {}
        for name, raw in markers.items():
            marker = _adapted(raw, alias)
            found = [
                k
                for k, value in enumerate(params)
                if type(value) is type(marker) and value == marker
            ]
            if not found:
                raise ValueError(f"marker {name}={marker!r} is not a parameter of the statement")
            positions[name] = found
        taken = [k for found in positions.values() for k in found]
        if len(taken) != len(set(taken)):
            raise ValueError("two markers share a value: give each a value of its own")
        self.query = query
        self.compiler = compiler
        self.sql = sql
        self.params = list(params)
        self.positions = positions
        # This thread's converters for the selected columns, worked out on its first run
        # (Django's compiler would ask every column's field on every run), for the
        # connection it has now. Kept per thread, so nothing outlives the thread or holds
        # its connection open.
        self._local = threading.local()

    def converters_for(self, compiler: Any) -> dict[int, Any]:
        connection = compiler.connection
        held: tuple[Any, dict[int, Any]] | None = getattr(self._local, "converters", None)
        if held is None or held[0] is not connection:
            fields = [column[0] for column in compiler.select[: compiler.col_count]]
            held = (connection, compiler.get_converters(fields))
            self._local.converters = held
        return held[1]


class Prepared(Generic[M]):
    """A queryset of ``model`` compiled once; ``first`` runs it with other values."""

    def __init__(self, model: type[M], build: Callable[..., QuerySet[M]], **markers: Any) -> None:
        self._model = model
        self._build = build
        self._markers = markers
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, alias: str) -> _Compiled:
        compiled = self._compiled.get(alias)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(alias)
                if compiled is None:
                    queryset = self._build(**self._markers).using(alias)
                    compiled = _Compiled(queryset, alias, self._markers)
                    self._compiled[alias] = compiled
        return compiled

    def first(self, *, using: str | None = None, **values: Any) -> M | None:
        """The first row as a model instance, or None. ``values`` names every marker."""
        if values.keys() != self._markers.keys():
            raise TypeError(f"give exactly {sorted(self._markers)}, not {sorted(values)}")
        if any(
            type(value) is int and not _INT64[0] <= value <= _INT64[1] for value in values.values()
        ):
            return None
        compiled = self._for(using or router.db_for_write(self._model))
        connection = connections[compiled.compiler.using]
        if compiled.query.select_for_update and connection.get_autocommit():
            # As Django's own compiler refuses: the lock would end with the statement.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(compiled.params)
        for name, found in compiled.positions.items():
            value = _adapted(values[name], compiled.compiler.using)
            for k in found:
                params[k] = value
        # A copy of the compiled statement for this run, whose SQL is the stored one.
        compiler = copy.copy(compiled.compiler)
        # This thread's connection (the compiled one holds the compiling thread's).
        compiler.connection = connection
        frozen = (compiled.sql, tuple(params))
        compiler.as_sql = lambda *args, **kwargs: frozen
        converters = compiled.converters_for(compiler)
        compiler.get_converters = lambda expressions: converters
        query = copy.copy(compiled.query)
        query.get_compiler = lambda *args, **kwargs: compiler  # type: ignore[method-assign]
        queryset: QuerySet[M] = QuerySet(model=self._model, query=query, using=compiler.using)
        row: M
        for row in ModelIterable(queryset):
            return row
        return None
