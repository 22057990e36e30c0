"""Faults while cases stream in, on the production shape (PostgreSQL, Redis, a real worker).

1,000 cases are submitted through the API from 4 client threads while the worker's pool
process is killed -9, then the whole worker is killed -9 and started again, then Redis
is killed -9 and started again (a private ``redis-server`` on a free port, keeping
nothing on disk, so its queued messages are lost). A client that gets a 5xx retries with
the same ``external_id``. Every accepted case must end in exactly one terminal state with
its image, and the only 5xx allowed are during the Redis outage.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Count

from decisions.routing import Level
from tests.conftest import REQUIRE_SERVICES, image_bytes, require_postgres
from tests.integration.conftest import WorkerProcess, app_use_broker, wait_for, worker_env
from workflows.models import Case, CaseEvent, CaseStatus, Prediction

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUTED = (CaseStatus.DECIDED, CaseStatus.IN_REVIEW)
TOTAL = int(os.environ.get("LOOPGATE_FAULT_CASES", "1000"))
CLIENTS = 4
OUTAGE_SECONDS = 6


class RedisServer:
    """A private redis-server on its own port, that can be killed -9 and started again."""

    def __init__(self, folder: Path):
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    require_postgres()
    if shutil.which("redis-server") is None:
        message = "needs redis-server on PATH to start a private Redis"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def faulty_worker(private_redis: RedisServer, tmp_path: Path) -> Iterator[WorkerProcess]:
    restore = app_use_broker(
        private_redis.url, options={"visibility_timeout": 3600, "socket_connect_timeout": 1}
    )
    env = worker_env(
        tmp_path,
        CELERY_BROKER_URL=private_redis.url,
        # Short sweeps and stall time keep the test short; the fast paths under test
        # (dead claims, refused publishes) do not depend on the stall time.
        LOOPGATE_SWEEP_INTERVAL_SECONDS="2",
        LOOPGATE_PUBLISH_RETRY_SECONDS="2",
        LOOPGATE_STALLED_AFTER_SECONDS="15",
        LOOPGATE_WORKER_HEARTBEAT_SECONDS="2",
        CELERY_VISIBILITY_TIMEOUT="3600",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        restore()
        out = Path(__file__).resolve().parents[2] / "test-output"
        out.mkdir(exist_ok=True)
        (out / "faults-worker.log").write_text((tmp_path / "worker.log").read_text()[-300_000:])


def claims_of(pid: int) -> list[str]:
    return list(
        Case.objects.filter(status=CaseStatus.PROCESSING, claimed_by__contains=f":{pid}:")
        .values_list("id", flat=True)
        .iterator()
    )


@contextmanager
def predictions_blocked(version_id: int) -> Iterator[None]:
    """Hold the model version's row lock: a batch storing its predictions waits on it.

    Storing a prediction takes a key-share lock on its model version (the foreign key), so
    while this is held every batch stops after its claim, with its cases ``processing``:
    a kill then always lands in the middle of a batch.
    """
    from modelops.models import ModelVersion

    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                ModelVersion.objects.select_for_update().get(pk=version_id)
                locked.set()
                release.wait(180)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(30)
    try:
        yield
    finally:
        release.set()
        holder.join()


def busy_pool_pid(worker: WorkerProcess) -> int:
    """A pool process of the worker that holds claimed cases it has not scored yet.

    Foreign keys are checked at commit on PostgreSQL, so a batch waits on the lock of
    ``predictions_blocked`` when it commits its predictions or its routing. A process
    killed while committing its routing still commits it; one that has no committed
    prediction yet is surely in the middle of its batch.
    """

    def find() -> int | None:
        children = set(worker.pool_children())
        claims = Case.objects.filter(status=CaseStatus.PROCESSING).values_list(
            "claimed_by", flat=True
        )
        for claim in set(claims[:100]):
            pid = int(claim.split(":")[1])
            if pid in children and not Prediction.objects.filter(case_id__in=claims_of(pid)):
                return pid
        return None

    return wait_for(find, timeout=120, what="a pool process in the middle of a batch")


def test_no_case_is_lost_or_decided_twice_through_kills_and_a_redis_restart(
    faulty_worker: WorkerProcess,
    private_redis: RedisServer,
    make_workflow: Any,
    make_user: Any,
    member: Any,
    client_for: Any,
    demo_model_version: Any,
) -> None:
    from rest_framework.test import APIClient

    worker = faulty_worker
    workflow = make_workflow("line", level=Level.FULL, confidence_threshold=0.9)
    user = make_user("camera")
    member(user, workflow, submit=True)
    credentials = dict(client_for(user)._credentials)
    labels = ["ok", "scratch", "crack", "stain"]
    images = [image_bytes(labels[i % 4], seed=i) for i in range(32)]

    numbers = iter(range(TOTAL))
    lock = threading.Lock()
    accepted: dict[int, str] = {}
    server_errors: list[tuple[float, int, int]] = []  # (time, n, status)
    statuses: Counter[int] = Counter()

    def submit_all() -> None:
        client = APIClient()
        client.credentials(**credentials)
        try:
            while True:
                with lock:
                    n = next(numbers, None)
                if n is None:
                    return
                with gate:
                    assert gate.wait_for(lambda n=n: n < open_below[0], timeout=600)
                deadline = time.monotonic() + 120
                while True:
                    buffer = io.BytesIO(images[n % len(images)])
                    buffer.name = "part.png"
                    response = client.post(
                        "/api/v1/workflows/line/cases/",
                        {"image": buffer, "external_id": f"part-{n}"},
                        format="multipart",
                    )
                    with lock:
                        statuses[response.status_code] += 1
                    if response.status_code in (200, 201):
                        with lock:
                            accepted[n] = response.json()["id"]
                        break
                    assert response.status_code >= 500, response.content
                    with lock:
                        server_errors.append((time.monotonic(), n, response.status_code))
                    assert time.monotonic() < deadline, f"part-{n} never accepted"
                    time.sleep(0.2)
        finally:
            connection.close()

    # The clients stop at each fault's point until the fault is under way, so every
    # fault lands in the middle of the stream whatever the machine's speed.
    first, second, third = TOTAL // 5, TOTAL * 9 // 20, TOTAL * 7 // 10
    gate = threading.Condition()
    open_below = [first]

    def wait_accepted(count: int) -> None:
        wait_for(lambda: len(accepted) >= count, timeout=300, what=f"{count} accepted cases")

    def wait_drained() -> None:
        """Wait until the worker has routed what was accepted (the clients are held at the
        gate), so that the next batch it takes is one the prediction lock stops before its
        predictions, not one already past them (a backlog on a slow machine)."""
        wait_for(
            lambda: (
                not Case.objects.filter(
                    status__in=(CaseStatus.RECEIVED, CaseStatus.PROCESSING)
                ).exists()
            ),
            timeout=300,
            what="the worker to route the backlog",
        )

    def open_until(limit: int) -> None:
        with gate:
            open_below[0] = limit
            gate.notify_all()

    @contextmanager
    def clients_released_on_failure() -> Iterator[None]:
        """If a step fails, let the clients finish at once rather than wait at the gate."""
        try:
            yield
        except BaseException:
            open_until(TOTAL)
            raise

    started = time.monotonic()
    figures: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool, clients_released_on_failure():
        futures = [pool.submit(submit_all) for _ in range(CLIENTS)]

        # 1. A pool process killed -9 in the middle of a batch.
        wait_accepted(first)
        wait_drained()
        with predictions_blocked(demo_model_version.pk):
            open_until(second)
            pid = busy_pool_pid(worker)
            orphaned = claims_of(pid)
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
        wait_for(lambda: not claims_of(pid), timeout=120, what="the dead claims to be released")
        figures["pool kill: its claims released after (s)"] = round(time.monotonic() - killed_at, 1)
        wait_for(
            lambda: (
                Case.objects.filter(id__in=orphaned, status__in=ROUTED).count() == len(orphaned)
            ),
            timeout=120,
            what="the killed pool process's cases",
        )
        figures["pool kill: cases it held"] = len(orphaned)
        figures["pool kill: all routed after (s)"] = round(time.monotonic() - killed_at, 1)

        # 2. The whole worker killed -9, and started again.
        wait_accepted(second)
        wait_drained()
        with predictions_blocked(demo_model_version.pk):
            open_until(third)
            busy_pool_pid(worker)
            held = [case_id for child in worker.pool_children() for case_id in claims_of(child)]
            worker.kill()
            killed_at = time.monotonic()
        worker.start()
        figures["worker kill: restart took (s)"] = round(time.monotonic() - killed_at, 1)
        wait_for(
            lambda: Case.objects.filter(id__in=held, status__in=ROUTED).count() == len(held),
            timeout=120,
            what="the killed worker's cases",
        )
        figures["worker kill: cases it held"] = len(held)
        figures["worker kill: all routed after (s)"] = round(time.monotonic() - killed_at, 1)

        # 3. Redis killed -9 (its queued messages are lost) and started again.
        wait_accepted(third)
        private_redis.kill()
        outage_start = time.monotonic()
        open_until(TOTAL)
        time.sleep(OUTAGE_SECONDS)
        private_redis.start()
        outage_end = time.monotonic()

        for future in futures:
            future.result()
    submitted_at = time.monotonic()

    ids = list(accepted.values())
    wait_for(
        lambda: Case.objects.filter(id__in=ids, status__in=ROUTED).count() == len(ids),
        timeout=300,
        what="every accepted case to be routed",
    )
    routed_at = time.monotonic()

    # Every submission became exactly one case, with its image, routed exactly once.
    assert len(accepted) == TOTAL
    assert len(set(ids)) == TOTAL
    assert Case.objects.filter(workflow=workflow).count() == TOTAL
    cases = list(Case.objects.filter(id__in=ids))
    assert all(case.status in ROUTED for case in cases)
    missing = [case.id for case in cases if not Path(case.image.path).is_file()]
    assert not missing, f"{len(missing)} cases lost their image"
    routings = Counter(
        CaseEvent.objects.filter(case_id__in=ids, kind="status", to_status__in=ROUTED)
        .values_list("case_id", flat=True)
        .iterator()
    )
    assert len(routings) == TOTAL
    assert set(routings.values()) == {1}, "a case was routed twice"
    assert (
        not Prediction.objects.filter(case_id__in=ids)
        .values("case_id", "model_version_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    # 5xx only while the broker was down (and the few seconds a request may take).
    outside = [e for e in server_errors if not (outage_start - 5 <= e[0] <= outage_end + 10)]
    assert not outside, outside
    assert worker.alive()

    publish_failed = CaseEvent.objects.filter(case_id__in=ids, kind="publish_failed").count()
    taken_over = CaseEvent.objects.filter(
        case_id__in=ids, reason__startswith="its worker process is gone"
    ).count()
    stalled = CaseEvent.objects.filter(
        case_id__in=ids, kind="retry", reason__startswith="processing stalled"
    ).count()
    model_errors = Case.objects.filter(id__in=ids, review_reason="model_error").count()
    figures.update(
        {
            "cases": TOTAL,
            "responses": dict(statuses),
            "5xx during the Redis outage": len(server_errors),
            "Redis outage (s)": round(outage_end - outage_start, 1),
            "publishes refused, published later": publish_failed,
            "claims taken over from dead processes": taken_over,
            "claims taken over after the stall time": stalled,
            "cases sent to review as model_error": model_errors,
            "submission took (s)": round(submitted_at - started, 1),
            "all routed after the Redis restart (s)": round(routed_at - outage_end, 1),
            "all routed after the last submission (s)": round(routed_at - submitted_at, 1),
        }
    )
    print()
    for key, value in figures.items():
        print(f"  {key}: {value}")
    assert model_errors == 0
    assert orphaned and held, "the kills did not land in a batch"
    assert publish_failed > 0, "no submission met the Redis outage"
