"""A worker keeps its database connection from task to task, as a web process does from
request to request, and replaces one the server ended before the next task uses it
(D148). Celery's Django fix-up is installed here as a worker installs it."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from loopgate.celery import app
from processing.tasks import workflow_drain
from tests.conftest import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fixup() -> Iterator[DjangoWorkerFixup]:
    require_postgres()
    installed = DjangoWorkerFixup(app).install()
    yield installed
    signals.task_prerun.disconnect(installed.on_task_prerun)
    signals.task_postrun.disconnect(installed.on_task_postrun)
    signals.worker_process_init.disconnect(installed.on_worker_process_init)
    signals.beat_embedded_init.disconnect(installed.close_database)


def run_task(body: Any) -> Any:
    """What a worker does around a task: the pre-run and post-run signals."""
    signals.task_prerun.send(sender=workflow_drain, task_id="t", task=workflow_drain)
    try:
        return body()
    finally:
        signals.task_postrun.send(sender=workflow_drain, task_id="t", task=workflow_drain)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_the_fixup_reuses_connections_for_a_while(fixup: DjangoWorkerFixup) -> None:
    # Without CELERY_DB_REUSE_MAX the fix-up closes every connection around every task.
    assert fixup.db_reuse_max == app.conf.get("CELERY_DB_REUSE_MAX") >= 100


def test_a_connection_lasts_from_task_to_task(fixup: DjangoWorkerFixup) -> None:
    first = run_task(backend_pid)
    assert [run_task(backend_pid) for _ in range(5)] == [first] * 5


def test_a_connection_the_server_ended_is_replaced_before_the_next_task(
    fixup: DjangoWorkerFixup,
) -> None:
    pid = run_task(backend_pid)
    raw = connection.connection
    with psycopg.connect(raw.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 10
    while not select.select([raw.fileno()], [], [], 0.05)[0]:
        assert time.monotonic() < deadline, "the server did not close the connection"
    assert run_task(backend_pid) != pid


def test_a_connection_past_its_age_is_closed_after_the_task(fixup: DjangoWorkerFixup) -> None:
    pid = run_task(backend_pid)
    connection.close_at = time.monotonic() - 1  # CONN_MAX_AGE has passed
    assert run_task(backend_pid) != pid


def test_a_connection_left_broken_by_a_task_is_closed(fixup: DjangoWorkerFixup) -> None:
    pid = run_task(backend_pid)

    def leaves_autocommit_off() -> None:
        connection.set_autocommit(False)

    run_task(leaves_autocommit_off)
    assert connection.connection is None or connection.get_autocommit()
    assert run_task(backend_pid) != pid
