"""Promotion and rollback while worker threads score cases: no case is scored by a
half-switched deployment, and a case in flight finishes on the plan it started with.

On PostgreSQL the threads run freely. SQLite's in-memory test database locks whole
tables and fails a second writer at once ("database table is locked"), so there the
workers and the admin retry a failed transaction; case processing is idempotent, and a
retried case reads the deployments again, which the checks below allow for.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connection

from modelops import services as modelops_services
from modelops.selectors import DeploymentPlan
from processing import services as workflow_services
from tests.modelops import factories
from workflows.models import Case, CaseStatus, Prediction

WORKERS = 3
CASES = 36


def snapshot(plan: DeploymentPlan) -> frozenset[tuple[int, str]]:
    return frozenset((version.pk, role) for version, role in plan.all_versions())


def retrying(action: Callable[[], Any]) -> Any:
    for attempt in range(200):
        try:
            return action()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc):
                raise
            time.sleep(0.005 + random.random() * 0.02 * min(attempt + 1, 10))
    raise AssertionError("still locked after 200 tries")


@pytest.mark.django_db(transaction=True)
def test_no_case_is_scored_by_a_half_switched_deployment(
    parts_workflow: Any, two_versions: Any, make_user: Any, monkeypatch: Any, settings: Any
) -> None:
    # A case whose transaction hit a lock is taken up again at once, however often: the
    # attempt cap guards against poison cases, and a test-database lock is not one.
    settings.LOOPGATE_STALLED_AFTER_SECONDS = 0
    monkeypatch.setattr(workflow_services, "MAX_PROCESSING_ATTEMPTS", 10_000)
    old, new = two_versions
    admin = make_user("ada", superuser=True)
    cases = [
        factories.case_create(parts_workflow, factories.part_image("ok", k)) for k in range(CASES)
    ]
    held_id = str(cases[0].id)
    plan_read = threading.Event()
    promoted = threading.Event()
    plans: dict[str, list[DeploymentPlan]] = defaultdict(list)
    plans_lock = threading.Lock()
    real_plans = workflow_services.deployment_plans

    def recording_plans(*, workflow_id: int, case_ids: list[str]) -> dict[str, DeploymentPlan]:
        batch = real_plans(workflow_id=workflow_id, case_ids=case_ids)
        with plans_lock:
            for case_id, plan in batch.items():
                plans[case_id].append(plan)
        if held_id in batch and not plan_read.is_set():
            # Hold this case between reading its plan and scoring it until the
            # promotion has committed: it must still finish on the old plan.
            plan_read.set()
            assert promoted.wait(timeout=120)
        return batch

    monkeypatch.setattr(workflow_services, "deployment_plans", recording_plans)

    todo: queue.Queue[str] = queue.Queue()
    for case in cases:
        todo.put(str(case.id))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                try:
                    case_id = todo.get_nowait()
                except queue.Empty:
                    return
                retrying(
                    lambda case_id=case_id: workflow_services.cases_process(case_ids=[case_id])
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    assert plan_read.wait(timeout=120)
    retrying(
        lambda: modelops_services.deployment_promote(
            workflow=parts_workflow, actor=admin, reason="blue/green"
        )
    )
    promoted.set()
    retrying(
        lambda: modelops_services.deployment_rollback(
            workflow=parts_workflow, actor=admin, reason="back"
        )
    )
    retrying(
        lambda: modelops_services.deployment_create(
            workflow=parts_workflow, model_version=new, role="shadow", actor=admin, reason="again"
        )
    )
    retrying(
        lambda: modelops_services.deployment_promote(
            workflow=parts_workflow, actor=admin, reason="forward"
        )
    )
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors

    allowed = {
        frozenset({(old.pk, "serving"), (new.pk, "shadow")}),  # before, and after re-deploying
        frozenset({(new.pk, "serving")}),  # after a promotion
        frozenset({(old.pk, "serving")}),  # after the rollback
    }
    seen = set()
    for case in Case.objects.filter(workflow=parts_workflow).select_related("deciding_prediction"):
        attempts = plans[str(case.id)]
        assert attempts, f"case {case.id} was never planned ({case.failure_reason})"
        for plan in attempts:
            assert snapshot(plan) in allowed, f"half-switched plan {snapshot(plan)}"
            seen.add(snapshot(plan))
        scored = frozenset(
            Prediction.objects.filter(case=case).values_list("model_version_id", "role")
        )
        final = attempts[-1]
        assert case.status == CaseStatus.IN_REVIEW, case.failure_reason
        assert case.deciding_prediction is not None, case.failure_reason
        assert case.deciding_prediction.model_version_id == final.deciding.pk
        assert case.deciding_prediction.role == "serving"
        if len(attempts) == 1:
            assert scored == snapshot(final), "a case was scored by versions outside its plan"
        else:
            assert scored <= frozenset().union(*(snapshot(p) for p in attempts))
    if connection.vendor == "postgresql":
        assert all(len(attempts) == 1 for attempts in plans.values())
    held = plans[held_id][0]
    assert snapshot(held) == frozenset({(old.pk, "serving"), (new.pk, "shadow")})
    held_case = Case.objects.get(pk=held_id)
    if len(plans[held_id]) == 1:
        assert held_case.deciding_prediction.model_version_id == old.pk
    assert len(seen) >= 2, "the deployment never switched while cases were scored"
    assert {d.role: d.model_version_id for d in parts_workflow.deployments.filter(active=True)} == {
        "serving": new.pk
    }
