"""The PostgreSQL backend's health check: no round trip for a live idle connection, and a
connection the server ended is found and replaced before a request uses it (D146)."""

from __future__ import annotations

import os
import resource
import select
import time
from typing import Any

import psycopg
import pytest
from django.db import connection

from tests.conftest import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres() -> None:
    require_postgres()


def _sent(monkeypatch: Any) -> list[str]:
    """The statements sent on the raw psycopg connection from now on."""
    sent: list[str] = []
    raw = connection.connection
    original = raw.cursor

    def cursor(*args: Any, **kwargs: Any) -> Any:
        sent.append("cursor")
        return original(*args, **kwargs)

    monkeypatch.setattr(raw, "cursor", cursor)
    return sent


def test_a_live_idle_connection_is_usable_without_a_query(monkeypatch: Any) -> None:
    assert connection.settings_dict["ENGINE"] == "kernel.postgresql"
    connection.ensure_connection()
    sent = _sent(monkeypatch)
    assert connection.is_usable()
    assert sent == []
    # Inside a transaction the state is asked about, as Django's own check does.
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        sent.clear()
        assert connection.is_usable()
        assert sent == ["cursor"]
        cursor.execute("ROLLBACK")


def test_a_connection_the_server_ended_is_replaced_before_the_next_request() -> None:
    connection.ensure_connection()
    raw = connection.connection
    pid = raw.info.backend_pid
    dsn = raw.info.dsn
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 10
    while not select.select([raw.fileno()], [], [], 0.05)[0]:
        assert time.monotonic() < deadline, "the server did not close the connection"
    assert not connection.is_usable()
    # What Django does at the start of a request: the check fails, the connection is
    # closed, and the request's first query opens a new one.
    connection.health_check_enabled = True
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert connection.connection is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_a_connection_past_descriptor_1023_is_checked_without_a_query(monkeypatch: Any) -> None:
    """A busy process holds many descriptors; ``select`` refuses one past 1023, and the
    check must not then take every connection for dead."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1300
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the descriptor limit ({hard}) is under {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    fillers: list[int] = []
    try:
        connection.close()
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            fillers.append(fd)
            if fd >= 1100:
                break
        connection.ensure_connection()
        assert connection.connection.fileno() > 1023
        sent = _sent(monkeypatch)
        assert connection.is_usable()
        assert sent == []
    finally:
        connection.close()
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
