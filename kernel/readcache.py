"""A read-through cache for the rows that authorise a request (D125).

Every API request reads the same few rows before it does any work: the API token and its
user, the workflow named in the URL, the caller's membership in it. They change rarely
and are read on every request, so they are kept in Django's cache (shared by every web
process: Redis in production), for at most ``LOOPGATE_ACCESS_CACHE_SECONDS``.

A stale entry would be a security hole (a revoked token that still works, a removed
member who still reviews), so every write of those rows invalidates its entries
(``accounts.invalidation``, ``workflows.invalidation``), and invalidation wins races:

* An entry is added with ``cache.add`` (set only if the key is free), never overwritten.
* Invalidating writes a *tombstone* for ``LOOPGATE_ACCESS_CACHE_SETTLE_SECONDS`` (now,
  and again when the writing transaction commits). While it stands, readers go to the
  database and may not fill the key, so a reader that loaded the old row just before the
  commit cannot put it back afterwards.
* What is read inside a transaction of the caller's is cached only when it commits (it
  may be rolled back), and only if it committed within the settle time of the read: a
  write committed after the read has left its tombstone standing until then (D128).

Creating a row only deletes the key (a cached "absent" would at worst refuse a new member
for one lifetime of an entry, never let anyone in).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

T = TypeVar("T")

# Part of every key: entries are pickled model instances, so a change of their shape
# must not read an old one.
KEY_VERSION = "access:v1"
# Entries are stored as a 1-tuple (``(None,)``: the row does not exist), so that any
# other value under a key is the tombstone.
_TOMBSTONE = "invalidated"


def access_key(*parts: Any) -> str:
    return ":".join([KEY_VERSION, *(str(part) for part in parts)])


def _outside_transaction() -> bool:
    """True when no transaction of ours is open (the test case's own does not count)."""
    return not any(
        not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks
    )


# What this request has read already (``request_memo``), by key; None outside a request.
_memo: ContextVar[dict[str, Any] | None] = ContextVar("loopgate_access_memo", default=None)


@contextmanager
def request_memo() -> Iterator[None]:
    """Within the block, a key read twice is read from the cache once (D142).

    A request reads the same entries in several places (the workflow's membership in the
    access check and again in the service); each read was a round trip to Redis. Only
    what the cache held or the database had committed is kept, and ``invalidate`` drops
    its keys here too, so the block sees its own writes. A model instance is handed out
    as a copy each time (as the cache unpickles one per read); other values (lists of
    tuples) are shared and not to be changed.
    """
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


class RequestMemoMiddleware:
    """``request_memo`` around every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_memo():
            return self.get_response(request)


def _own(value: T) -> T:
    """A model instance's copy (its fields and state apart), anything else as it is."""
    return copy.copy(value) if isinstance(value, Model) else value


def cached_read(key: str, load: Callable[[], T | None], *, cache_absent: bool = True) -> T | None:
    """``load()``, or its answer cached under ``key``. ``None`` is cached too, when
    ``cache_absent`` (a workflow or membership that does not exist), so a miss costs one
    query per lifetime of an entry as well."""
    memo = _memo.get()
    if memo is not None and key in memo:
        # Each caller gets its own instance, as from the cache: one may set a field.
        held: T | None = memo[key]
        return _own(held)
    found = cache.get(key)
    if isinstance(found, tuple):
        if memo is not None:
            memo[key] = _own(found[0])
        return found[0]
    fresh = load()
    if memo is not None and _outside_transaction():
        memo[key] = _own(fresh)
    if found is None and (fresh is not None or cache_absent):
        if _outside_transaction():
            cache.add(key, (fresh,), settings.LOOPGATE_ACCESS_CACHE_SECONDS)
        else:
            read_at = time.monotonic()

            def fill() -> None:
                # A write that committed after the read left a tombstone for the settle
                # time from its commit, so a fill within the settle time of the read
                # finds it and adds nothing; a later one might not, so it is dropped.
                if time.monotonic() - read_at < settings.LOOPGATE_ACCESS_CACHE_SETTLE_SECONDS:
                    cache.add(key, (fresh,), settings.LOOPGATE_ACCESS_CACHE_SECONDS)

            transaction.on_commit(fill)
    return fresh


def invalidate(keys: list[str], *, created: bool = False) -> None:
    """Forget ``keys``: at once, and again when the current transaction commits.

    A change or a deletion leaves a tombstone that keeps readers from filling the keys
    for a few seconds; a new row only needs the keys gone (see the module docstring).
    """
    if not keys:
        return
    memo = _memo.get()
    if memo is not None:
        for key in keys:
            memo.pop(key, None)
    if created:
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))
        return
    seconds = settings.LOOPGATE_ACCESS_CACHE_SETTLE_SECONDS
    marks = dict.fromkeys(keys, _TOMBSTONE)
    cache.set_many(marks, seconds)
    transaction.on_commit(lambda: cache.set_many(marks, seconds))
