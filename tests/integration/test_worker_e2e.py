"""End to end on the production shape: REST -> Redis -> a real Celery worker -> PostgreSQL.

Cases go through every automation level; a worker killed mid-stream and a Redis that
lost its messages lose no case and decide none twice.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

import pytest
from django.db.models import Count, Q

from decisions.routing import Level
from inference.devices import cpu_threads_policy
from processing.services import case_audit_draw
from tests.conftest import image_bytes
from tests.integration.conftest import WorkerProcess, purge_broker, wait_for
from workflows.models import Case, CaseEvent, CaseStatus, Prediction

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUTED = (CaseStatus.DECIDED, CaseStatus.IN_REVIEW)


@pytest.fixture
def upstream(make_workflow: Any, make_user: Any, member: Any, client_for: Any) -> Any:
    workflow = make_workflow("line", level=Level.SHADOW, confidence_threshold=0.9, audit_rate=0.0)
    user = make_user("camera")
    member(user, workflow, submit=True)
    return workflow, client_for(user)


def post(
    client: Any, slug: str, *, seed: int, label: str = "ok", external_id: str | None = None
) -> str:
    buffer = io.BytesIO(image_bytes(label, seed=seed))
    buffer.name = "part.png"
    fields: dict[str, Any] = {"image": buffer}
    if external_id:
        fields["external_id"] = external_id
    response = client.post(f"/api/v1/workflows/{slug}/cases/", fields, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def all_routed(ids: list[str]) -> bool:
    return Case.objects.filter(id__in=ids, status__in=ROUTED).count() == len(ids)


def assert_decided_at_most_once(ids: list[str]) -> None:
    decisions = Counter(
        CaseEvent.objects.filter(case_id__in=ids, kind="status", to_status__in=ROUTED).values_list(
            "case_id", flat=True
        )
    )
    assert all(count == 1 for count in decisions.values()), decisions
    duplicates = (
        Prediction.objects.filter(case_id__in=ids)
        .values("case_id", "model_version_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not duplicates.exists()


def test_cases_flow_through_every_level(worker: WorkerProcess, upstream: Any) -> None:
    workflow, client = upstream
    labels = ["ok", "scratch", "crack", "stain"]
    seen: dict[str, list[dict]] = {}
    for level in Level:
        workflow.level = level
        workflow.audit_rate = 0.5 if level in (Level.PARTIAL, Level.FULL) else 0.0
        workflow.save()
        ids = [post(client, "line", seed=100 + i, label=labels[i % 4]) for i in range(8)]
        wait_for(lambda ids=ids: all_routed(ids), timeout=120, what=f"{level} cases to be routed")
        seen[level] = [client.get(f"/api/v1/cases/{i}/").json() for i in ids]
        assert_decided_at_most_once(ids)

    human_only = seen[Level.HUMAN_ONLY]
    assert all(c["status"] == "in_review" and c["predictions"] == [] for c in human_only)
    assert {c["review_reason"] for c in human_only} == {"human_only"}

    shadow = seen[Level.SHADOW]
    assert all(c["status"] == "in_review" and len(c["predictions"]) == 1 for c in shadow)
    assert all(c["routing"]["suggestion_visible"] is False for c in shadow)

    assistance = seen[Level.ASSISTANCE]
    assert all(
        c["status"] == "in_review" and c["routing"]["suggestion_visible"] for c in assistance
    )

    for case in seen[Level.PARTIAL]:
        confidence = case["predictions"][0]["confidence"]
        if confidence >= 0.9:
            assert case["status"] == "decided"
            assert case["decision"]["source"] == "model"
            assert case["review_reason"] in (None, "audit")
        else:
            assert case["status"] == "in_review"
            assert case["review_reason"] == "low_confidence"

    full = seen[Level.FULL]
    assert all(c["status"] == "decided" and c["decision"]["source"] == "model" for c in full)
    assert all(c["decision"]["model_version"] == "surface-cnn:v1" for c in full)
    audited = [c for c in full if c["review_reason"] == "audit"]
    expected_audits = sum(case_audit_draw(c["id"]) < 0.5 for c in full)
    assert len(audited) == expected_audits


def test_killed_worker_loses_no_case_and_decides_none_twice(
    worker: WorkerProcess, upstream: Any
) -> None:
    workflow, client = upstream
    workflow.level = Level.FULL
    workflow.save()
    ids = [post(client, "line", seed=200 + i) for i in range(40)]
    wait_for(
        lambda: Case.objects.filter(id__in=ids, status=CaseStatus.DECIDED).exists(),
        timeout=120,
        what="the first decision",
    )
    worker.kill()
    routed_at_kill = Case.objects.filter(id__in=ids, status__in=ROUTED).count()
    worker.start()
    wait_for(lambda: all_routed(ids), timeout=180, what="every case after the restart")
    assert Case.objects.filter(id__in=ids, status=CaseStatus.DECIDED).count() == len(ids)
    assert_decided_at_most_once(ids)
    assert Prediction.objects.filter(case_id__in=ids).count() == len(ids)
    print(f"routed before the kill: {routed_at_kill}/{len(ids)}")


def test_redis_losing_its_messages_loses_no_case(worker: WorkerProcess, upstream: Any) -> None:
    """Redis here keeps nothing on disk: a restart drops queued messages. The sweeper
    finds the cases they were for, and queues them again."""
    workflow, client = upstream
    workflow.level = Level.FULL
    workflow.save()
    worker.stop()
    ids = [post(client, "line", seed=300 + i) for i in range(10)]
    assert Case.objects.filter(id__in=ids, status=CaseStatus.RECEIVED).count() == len(ids)
    purge_broker()
    worker.start()
    wait_for(lambda: all_routed(ids), timeout=120, what="the sweeper to recover every case")
    assert_decided_at_most_once(ids)
    requeued = CaseEvent.objects.filter(case_id__in=ids, kind="status", to_status="processing")
    assert requeued.count() == len(ids)


def test_duplicate_external_ids_racing_through_the_api_make_one_case(
    worker: WorkerProcess, upstream: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection as thread_connection
    from rest_framework.test import APIClient

    _, shared_client = upstream
    credentials = dict(shared_client._credentials)

    def submit(seed: int) -> int:
        client = APIClient()
        client.credentials(**credentials)
        try:
            buffer = io.BytesIO(image_bytes(seed=seed))
            buffer.name = "p.png"
            response = client.post(
                "/api/v1/workflows/line/cases/",
                {"image": buffer, "external_id": "same-part"},
                format="multipart",
            )
            return response.status_code
        finally:
            thread_connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(submit, range(6)))
    assert statuses.count(201) == 1, statuses
    assert statuses.count(200) == 5, statuses
    assert Case.objects.filter(Q(external_id="same-part")).count() == 1


def test_pool_processes_take_the_cpu_thread_policy_and_wait_passively(
    worker: WorkerProcess, upstream: Any
) -> None:
    """Each pool process applies the thread policy when it starts, before any task, and
    runs with OMP_WAIT_POLICY=PASSIVE set before torch was loaded (D78)."""
    _workflow, client = upstream
    ids = [post(client, "line", seed=700 + i) for i in range(3)]
    wait_for(lambda: all_routed(ids), timeout=120, what="cases to be routed")
    pattern = re.compile(
        r"worker process (\d+): torch threads (\d+) \(cores (\d+), worker processes (\d+), "
        r"LOOPGATE_TORCH_THREADS (\S+)\), OMP_WAIT_POLICY (\S+)"
    )
    lines = pattern.findall(worker.log_path.read_text())
    assert lines, worker.log_path.read_text()[-3000:]
    pool = set(worker.pool_children())
    for pid, threads, cores, processes, requested, wait_policy in lines:
        assert int(pid) in pool
        assert requested == "None"
        assert int(processes) == 1  # --concurrency 1
        assert int(threads) == cpu_threads_policy(cores=int(cores), processes=1)
        assert wait_policy == "PASSIVE"
