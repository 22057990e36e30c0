"""The embedded default under load: a real worker over the filesystem broker stays up.

Cases are submitted from 8 threads through the case service (image validation, file,
row, event, on-commit publish: everything the API does but HTTP) to a real
``celery worker --beat`` subprocess over the embedded filesystem transport, in three
rounds of 2,000 cases each. With kombu's stock transport the demo's worker died within a
few dozen cases ("Unrecoverable error: JSONDecodeError"): a consumer read a message file
its writer had not finished. ``LOOPGATE_STRESS_CASES`` changes the cases per round.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from decisions.routing import Level
from processing.services import case_create
from tests.conftest import image_bytes, require_postgres
from tests.integration.conftest import WorkerProcess, app_use_broker, wait_for, worker_env
from workflows.models import Case, CaseEvent, CaseStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUTED = (CaseStatus.DECIDED, CaseStatus.IN_REVIEW)
ROUNDS = 3
TOTAL = ROUNDS * int(os.environ.get("LOOPGATE_STRESS_CASES", "2000"))
THREADS = 8


@pytest.fixture
def embedded_worker(tmp_path: Path) -> Iterator[tuple[WorkerProcess, Path]]:
    """A worker over the filesystem broker in tmp_path/var/broker, as the demo runs it."""
    require_postgres()
    broker_dir = tmp_path / "var" / "broker"
    options = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "control_folder": str(broker_dir / "control"),
        "claim_folder": str(broker_dir / "claimed"),
        "bad_folder": str(broker_dir / "bad"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
    for folder in ("queue", "control", "claimed", "bad"):
        (broker_dir / folder).mkdir(parents=True)
    transport = "loopgate.broker:Transport"
    restore = app_use_broker("filesystem://", transport=transport, options=options)
    env = worker_env(
        tmp_path, CELERY_BROKER_URL="filesystem://", LOOPGATE_SWEEP_INTERVAL_SECONDS="5"
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker, broker_dir
    finally:
        worker.stop()
        restore()
        out = Path(__file__).resolve().parents[2] / "test-output"
        out.mkdir(exist_ok=True)
        (out / "embedded-stress-worker.log").write_text(
            (tmp_path / "worker.log").read_text()[-200_000:]
        )


def test_a_worker_on_the_embedded_broker_survives_thousands_of_cases(
    embedded_worker: tuple[WorkerProcess, Path], make_workflow: Any
) -> None:
    worker, broker_dir = embedded_worker
    workflow = make_workflow("stress", level=Level.FULL, confidence_threshold=0.9)
    labels = ["ok", "scratch", "crack", "stain"]
    images = [image_bytes(labels[i % 4], seed=i) for i in range(64)]
    counter = iter(range(TOTAL))
    counter_lock = threading.Lock()
    figures = []

    def submit_until(limit: int) -> int:
        made = 0
        try:
            while True:
                with counter_lock:
                    n = next(counter, None)
                if n is None or n >= limit:
                    return made
                case_create(
                    workflow=workflow,
                    image_data=images[n % len(images)],
                    external_id=f"part-{n}",
                    metadata={"n": n},
                    submitted_by=None,
                )
                made += 1
        finally:
            connection.close()

    per_round = -(-TOTAL // ROUNDS)
    for round_number in range(ROUNDS):
        limit = min(TOTAL, per_round * (round_number + 1))
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            made = sum(pool.map(submit_until, [limit] * THREADS))
        submitted = time.monotonic() - started
        wait_for(
            lambda limit=limit: (
                Case.objects.filter(status__in=ROUTED).count() >= limit or not worker.alive()
            ),
            timeout=600,
            what=f"round {round_number + 1} to be routed",
        )
        assert worker.alive(), worker.log_path.read_text()[-3000:]
        routed = time.monotonic() - started
        figures.append((round_number + 1, made, submitted, routed))
        # Put back what the previous round's submissions consumed of the counter.
        counter = iter(range(limit, TOTAL))

    log = worker.log_path.read_text()
    for round_number, made, submitted, routed in figures:
        print(
            f"round {round_number}: {made} cases submitted in {submitted:.1f} s "
            f"({made / submitted:.0f}/s), all routed after {routed:.1f} s "
            f"({made / routed:.0f}/s end to end)"
        )
    assert worker.alive()
    assert "Unrecoverable error" not in log
    assert Case.objects.count() == TOTAL
    assert Case.objects.filter(status__in=ROUTED).count() == TOTAL
    assert not any((broker_dir / "bad").iterdir())
    decisions = CaseEvent.objects.filter(kind="status", to_status__in=ROUTED).count()
    assert decisions == TOTAL
