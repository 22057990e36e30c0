"""Django's PostgreSQL backend, with a health check that costs no round trip (D146) and
server-side binding with prepared statements (D151).

With ``CONN_HEALTH_CHECKS`` Django checks a kept connection before the first query of
every request (and of every task in a worker that keeps connections): the psycopg
backend sends ``SELECT 1`` and waits for the answer. On the benchmark machine that was
0.05 ms of the web process's CPU, 0.03 ms of PostgreSQL's and a round trip's wait on
every API request, to learn what is almost always true.

A server that ends a connection (a restart, ``pg_terminate_backend``, an idle timeout)
sends its error and closes the socket, so a dead connection has something to read: here
the socket is polled without waiting, and only then, or when the connection is not idle
outside a transaction, is ``SELECT 1`` sent as before. What neither check can see in
time (a peer gone without a word) is found as before, by the first query failing.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db.backends.postgresql import base
from psycopg import pq

# Set inside ``unprepared()``: statements run as they are, planned for their values.
_UNPREPARED: ContextVar[bool] = ContextVar("loopgate_unprepared", default=False)


@contextmanager
def unprepared() -> Iterator[None]:
    """Statements run inside are never prepared: PostgreSQL plans each one for its own
    values, as with client-side binding.

    A prepared statement's generic plan is made once, from the table's statistics at
    the time, and kept until they change (``ANALYZE``). For a statement whose best plan
    depends on the table's size, a plan made while the table was nearly empty (a
    sequential scan) is kept while the table grows, and each execution reads all of it
    (D151). Such statements run here. Elsewhere, and on other databases, a no-op."""
    token = _UNPREPARED.set(True)
    try:
        yield
    finally:
        _UNPREPARED.reset(token)


class ServerBindingCursor(base.ServerBindingCursor):
    """Django's server-side binding cursor, which does not prepare inside
    ``unprepared()``."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if kwargs.get("prepare") is None and _UNPREPARED.get():
            kwargs["prepare"] = False
        return super().execute(query, params, **kwargs)  # type: ignore[misc]  # stubs lack it


def _readable(fd: int) -> bool:
    """Whether ``fd`` has something to read (or is closed), without waiting. ``poll``
    where there is one: ``select`` refuses descriptors past 1023, which a busy process
    (a web server's sockets, a worker's files) reaches."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if self.settings_dict["OPTIONS"].get("server_side_binding") is True:
            params["cursor_factory"] = ServerBindingCursor
        return params

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        if (
            connection.pgconn.status == pq.ConnStatus.OK
            and connection.info.transaction_status == pq.TransactionStatus.IDLE
        ):
            try:
                readable = _readable(connection.fileno())
            except (OSError, ValueError):
                readable = True  # cannot tell: ask the server
            if not readable:
                return True
        # Something arrived unasked (most likely the server's goodbye), or the connection
        # is in a state to ask about: Django's own check, a round trip.
        return bool(super().is_usable())
