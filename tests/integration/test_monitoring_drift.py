"""The demo's lighting change, end to end with a real worker: an input-drift alert that
names brightness comes before the accuracy step down.

300 normal cases, then 300 under ``--drift lighting`` (``manage.py demo_stream``), in
chunks of 50 as a camera would send them; after each chunk the worker has routed it, a
reviewer labels the open audit tasks with the true labels (the audits the step down
judges), and the periodic monitoring check runs (as Celery beat would).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from automation.models import Alert, AlertKind, LevelChange
from loopgate.demo import demo_truth_load
from monitoring.models import CaseMeasurement
from monitoring.services import monitoring_check_workflow
from review.models import ReviewTask
from review.services import review_next, verdict_submit
from tests.integration.conftest import WorkerProcess, wait_for
from workflows.models import Case, CaseStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHUNK = 50


def test_lighting_drift_alert_names_brightness_before_the_step_down(
    worker: WorkerProcess,
    make_workflow: Any,
    make_user: Any,
    member: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    settings.VAR_DIR = tmp_path / "var"
    workflow = make_workflow(
        "line", level="full", confidence_threshold=0.0, audit_rate=0.1, target_accuracy=0.85
    )
    camera = make_user("camera")
    member(camera, workflow, submit=True)
    reviewer = make_user("rita")
    reviewer.email = "rita@example.com"
    reviewer.save()
    member(reviewer, workflow, review=True, admin=True)

    timeline: list[tuple[int, str]] = []
    sent = 0
    for drift in (None, "lighting"):
        for chunk in range(300 // CHUNK):
            options = {"cases": CHUNK, "seed": 100 + chunk, "workflow": "line"}
            options["submitter"] = "camera"
            if drift:
                options["drift"] = drift
            call_command("demo_stream", **options)
            sent += CHUNK
            wait_for(
                lambda n=sent: (
                    Case.objects.filter(
                        workflow=workflow, status__in=(CaseStatus.DECIDED, CaseStatus.IN_REVIEW)
                    ).count()
                    >= n
                ),
                timeout=180,
                what=f"{sent} cases routed",
            )
            truth = demo_truth_load("line")
            while (assignment := review_next(workflow=workflow, reviewer=reviewer)) is not None:
                task = ReviewTask.objects.select_related("case").get(pk=assignment.task_id)
                verdict_submit(task_id=task.pk, reviewer=reviewer, label=truth[str(task.case_id)])
            monitoring_check_workflow(workflow_id=workflow.pk)
            if Alert.objects.filter(workflow=workflow, kind=AlertKind.INPUT_DRIFT).exists():
                timeline.append((sent, "drift"))
            workflow.refresh_from_db()
            if LevelChange.objects.filter(workflow=workflow, automatic=True).exists():
                timeline.append((sent, "step_down"))

    out = Path(__file__).resolve().parents[2] / "test-output"
    out.mkdir(exist_ok=True)
    (out / "monitoring-drift-timeline.txt").write_text(
        "".join(f"after {n} cases: {what}\n" for n, what in timeline)
    )
    assert CaseMeasurement.objects.filter(workflow=workflow).count() == 600
    drift_alert = Alert.objects.get(workflow=workflow, kind=AlertKind.INPUT_DRIFT)
    assert "brightness" in drift_alert.data["metrics"], drift_alert.data
    assert "brightness" in drift_alert.message
    first_drift = min(sent for sent, what in timeline if what == "drift")
    assert 300 < first_drift <= 450, timeline
    step_downs = [sent for sent, what in timeline if what == "step_down"]
    if step_downs:
        assert first_drift < min(step_downs), timeline
    step_down = LevelChange.objects.filter(workflow=workflow, automatic=True).first()
    if step_down is not None:
        assert drift_alert.created_at < step_down.created_at
    assert any("input drift" in message.subject for message in mail.outbox)
