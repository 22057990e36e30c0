"""The walk an admin takes, end to end through the real services and the API.

Cases are routed by the real routing service and reviewed through the real review
services (claim, verdict); only the model's prediction is made up here, so that the
test does not wait for the CNN. After each audit verdict the review flow queues the
automation check on commit (``automation_check_queue``; Celery runs eagerly here).

1. shadow: raising to partial is refused until enough unbiased labels exist;
2. then allowed; the platform recommends a threshold and the admin applies it;
3. a drifted stream arrives: audited accuracy falls and the workflow steps down to
   assistance by itself, with a log entry and a firing alert;
4. going back up is refused until fresh evidence exists.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from django.db import transaction

from decisions.routing import ModelOpinion
from processing.services import case_route, policy_of
from review.models import TaskKind
from review.services import review_next, verdict_submit
from tests.automation.conftest import LABELS
from workflows.models import Case, Prediction

pytestmark = pytest.mark.django_db


class Line:
    """A camera line with a made-up model, and reviewers who know the truth."""

    def __init__(self, workflow: Any, version: Any, reviewer: Any) -> None:
        self.workflow = workflow
        self.version = version
        self.reviewer = reviewer
        self.truth: dict[str, str] = {}

    def stream(self, n: int, *, accuracy: float, seed: int) -> None:
        """``n`` cases; the model is right with ``accuracy``. Below 90% (a drifted stream)
        its wrong answers are as confident as its right ones: drift makes a model wrong
        without it knowing."""
        rng = np.random.default_rng(seed)
        self.workflow.refresh_from_db()
        for _ in range(n):
            truth = str(rng.choice(LABELS, p=[0.55, 0.15, 0.15, 0.15]))
            right = rng.random() < accuracy
            predicted = truth if right else str(rng.choice([x for x in LABELS if x != truth]))
            confident = right or accuracy < 0.9
            confidence = round(float(rng.beta(14, 1.2) if confident else rng.beta(4, 2)), 6)
            with transaction.atomic():
                case = Case.objects.create(
                    id=uuid.uuid4(),
                    workflow=self.workflow,
                    image="cases/fake.png",
                    image_format="PNG",
                    image_width=8,
                    image_height=8,
                    image_bytes=100,
                    image_sha256="0" * 64,
                    status="processing",
                )
                prediction = Prediction.objects.create(
                    case=case,
                    model_version=self.version,
                    role="serving",
                    scores={predicted: confidence},
                    label=predicted,
                    confidence=confidence,
                )
                case = Case.objects.select_for_update().get(pk=case.pk)
                case_route(
                    case=case,
                    policy=policy_of(self.workflow),
                    plan=None,
                    opinion=ModelOpinion(label=predicted, confidence=confidence),
                    deciding_prediction=prediction,
                )
            self.truth[str(case.id)] = truth

    def review_all(self, capture: Any) -> dict[str, int]:
        counts = {"review": 0, "audit": 0}
        while (
            assignment := review_next(workflow=self.workflow, reviewer=self.reviewer)
        ) is not None:
            task = assignment.task
            with capture(execute=True):
                verdict_submit(
                    task_id=task.pk, reviewer=self.reviewer, label=self.truth[str(task.case_id)]
                )
            counts["audit" if task.kind == TaskKind.AUDIT else "review"] += 1
        return counts


@pytest.fixture
def walk(
    automation_workflow: Any, model_version: Any, make_user: Any, member: Any, client_for: Any
) -> tuple[Line, Any]:
    workflow = automation_workflow(
        "surface-inspection",
        level="shadow",
        target_accuracy=0.9,
        min_evidence=100,
        audit_rate=0.3,
    )
    admin = make_user("admin")
    member(admin, workflow, admin=True)
    reviewer = make_user("reviewer")
    member(reviewer, workflow, review=True)
    return Line(workflow, model_version, reviewer), client_for(admin)


def test_shadow_to_partial_then_a_drift_steps_it_down(
    walk: tuple[Line, Any], django_capture_on_commit_callbacks: Any
) -> None:
    line, admin = walk
    api = "/api/v1/workflows/surface-inspection/automation/"
    raise_to_partial = {"level": "partial", "reason": "the model earned it"}

    refused = admin.patch(api, raise_to_partial, format="json")
    assert refused.status_code == 409
    assert "only 0 human-labelled cases, 100 needed" in refused.json()["error"]["message"]

    line.stream(50, accuracy=0.98, seed=1)
    assert line.review_all(django_capture_on_commit_callbacks) == {"review": 50, "audit": 0}
    refused = admin.patch(api, raise_to_partial, format="json")
    assert refused.status_code == 409
    assert "only 50 human-labelled cases, 100 needed" in refused.json()["error"]["message"]

    line.stream(90, accuracy=0.98, seed=2)
    line.review_all(django_capture_on_commit_callbacks)
    allowed = admin.patch(api, raise_to_partial, format="json")
    assert allowed.status_code == 200, allowed.content
    assert allowed.json()["change"]["evidence"]["gate"]["n"] == 140

    threshold = admin.get(api + "threshold/", {"target_error": 0.1}).json()
    recommended = threshold["recommendation"]
    assert recommended["threshold"] is not None, recommended["reason"]
    assert recommended["expected_automation_rate"] > 0.5
    applied = admin.post(
        api + "threshold/",
        {"target_error": 0.1, "confidence": 0.95, "reason": "as recommended"},
        format="json",
    )
    assert applied.status_code == 200, applied.content
    assert applied.json()["automation"]["confidence_threshold"] == recommended["threshold"]

    line.stream(200, accuracy=0.55, seed=3)
    counts = line.review_all(django_capture_on_commit_callbacks)
    assert counts["audit"] >= 20
    body = admin.get(api).json()
    assert body["automation"]["level"] == "assistance"
    step_down = body["changes"][0]
    assert step_down["automatic"] is True
    assert (step_down["from_level"], step_down["to_level"]) == ("partial", "assistance")
    assert step_down["evidence"]["upper_bound"] < 0.9
    [alert] = admin.get("/api/v1/workflows/surface-inspection/alerts/").json()
    assert alert["kind"] == "accuracy" and alert["state"] == "firing"

    again = admin.patch(api, raise_to_partial, format="json")
    assert again.status_code == 409
    assert "fresh evidence only" in again.json()["error"]["message"]
