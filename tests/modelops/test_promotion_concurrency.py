"""Promotion and rollback while worker threads score cases: no case is scored by a
half-switched deployment, and a case in flight finishes on the plan it started with."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from django.db import connection

from modelops import services as modelops_services
from modelops.selectors import DeploymentPlan
from tests.modelops import factories
from workflows import services as workflow_services
from workflows.models import Case, CaseStatus, Prediction

WORKERS = 3
CASES = 36


def snapshot(plan: DeploymentPlan) -> frozenset[tuple[int, str]]:
    return frozenset((version.pk, role) for version, role in plan.all_versions())


@pytest.mark.django_db(transaction=True)
def test_no_case_is_scored_by_a_half_switched_deployment(
    parts_workflow: Any, two_versions: Any, make_user: Any, monkeypatch: Any
) -> None:
    old, new = two_versions
    admin = make_user("ada", superuser=True)
    cases = [
        factories.case_create(parts_workflow, factories.part_image("ok", k)) for k in range(CASES)
    ]
    held_id = str(cases[0].id)
    plan_read = threading.Event()
    promoted = threading.Event()
    plans: dict[str, DeploymentPlan] = {}
    plans_lock = threading.Lock()
    real_plan = workflow_services.deployment_plan

    def recording_plan(*, workflow_id: int, case_id: str) -> DeploymentPlan:
        plan = real_plan(workflow_id=workflow_id, case_id=case_id)
        with plans_lock:
            plans[case_id] = plan
        if case_id == held_id:
            # Hold this case between reading its plan and scoring it until the
            # promotion has committed: it must still finish on the old plan.
            plan_read.set()
            assert promoted.wait(timeout=60)
        return plan

    monkeypatch.setattr(workflow_services, "deployment_plan", recording_plan)

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
                workflow_services.cases_process(case_ids=[case_id])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    assert plan_read.wait(timeout=60)
    modelops_services.deployment_promote(workflow=parts_workflow, actor=admin, reason="blue/green")
    promoted.set()
    modelops_services.deployment_rollback(workflow=parts_workflow, actor=admin, reason="back")
    modelops_services.deployment_create(
        workflow=parts_workflow, model_version=new, role="shadow", actor=admin, reason="again"
    )
    modelops_services.deployment_promote(workflow=parts_workflow, actor=admin, reason="forward")
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    allowed = {
        frozenset({(old.pk, "serving"), (new.pk, "shadow")}),  # before, and after re-deploying
        frozenset({(new.pk, "serving")}),  # after a promotion
        frozenset({(old.pk, "serving")}),  # after the rollback
    }
    assert len(plans) == CASES
    for case in Case.objects.filter(workflow=parts_workflow).select_related("deciding_prediction"):
        plan = plans[str(case.id)]
        scored = frozenset(
            Prediction.objects.filter(case=case).values_list("model_version_id", "role")
        )
        assert snapshot(plan) in allowed, f"half-switched plan {snapshot(plan)}"
        assert scored == snapshot(plan), "a case was scored by versions other than its plan"
        assert case.status == CaseStatus.IN_REVIEW, case.failure_reason
        assert case.deciding_prediction.model_version_id == plan.deciding.pk
        assert case.deciding_prediction.role == "serving"
    held = plans[held_id]
    assert snapshot(held) == frozenset({(old.pk, "serving"), (new.pk, "shadow")})
    assert {d.role: d.model_version_id for d in parts_workflow.deployments.filter(active=True)} == {
        "serving": new.pk
    }
