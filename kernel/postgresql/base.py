"""Django's PostgreSQL backend, with a health check that costs no round trip (D146).

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

from django.db.backends.postgresql import base
from psycopg import pq


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
