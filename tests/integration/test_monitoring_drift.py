"""The demo's lighting change, end to end with a real worker: an input-drift alert that
names brightness reaches the admins (email, and a signed webhook to a local receiver)
before the audits prove the accuracy drop and the level steps down.

300 normal cases, then 300 under ``--drift lighting`` (``manage.py demo_stream``), in
chunks of 50 as a camera would send them. After each chunk the worker has routed it;
the periodic monitoring check runs (as Celery beat would, every minute: it needs only
the measurements, which exist once a case is routed); then a reviewer labels the open
audit tasks with the true labels from the demo's answer key (as
``demo_simulate_reviewers`` does), and the worker judges the audit window after every
audit verdict, as in production.

The workflow is at ``full`` with the gate's floor target (80%) and audits 60% of the
model's decisions: a line just raised and still watched closely. The demo model is
right on 90% of the normal stream and 56% of the lit one (fixed by the seeds); which
cases are audited is random. With these settings the audits prove the miss after a
median of 480 cases (5th percentile 445, never later than 600 in 3,000 simulated draws
of the audit sample), while the drift alarm comes at the check after case 450 (two
checks in a row, the first one with 100 lit cases). At the default 10% audit rate the
audits of 300 lit cases never prove it: the drift alert is then the only warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from automation.models import Alert, AlertKind, LevelChange
from automation.services import step_down_status
from integrations.signing import signature_verify
from loopgate.demo import demo_truth_load
from monitoring.models import CaseMeasurement
from monitoring.services import monitoring_check_workflow
from review.services import review_next, verdict_submit
from tests.conftest import require_postgres_and_redis
from tests.integration.conftest import WorkerProcess, purge_broker, wait_for, worker_env
from tests.integrations.receiver import Receiver, receiver
from workflows.models import Case, CaseStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHUNK = 50
AUDIT_RATE = 0.6
TARGET_ACCURACY = 0.8
OUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture
def line_worker(transactional_db: None, settings: Any, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A live worker (with beat) that may deliver webhooks to this machine's receiver."""
    require_postgres_and_redis()
    from loopgate.celery import app as celery_app

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    env = worker_env(
        tmp_path,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        LOOPGATE_MEDIA_ROOT=settings.MEDIA_ROOT,
        LOOPGATE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        LOOPGATE_WEBHOOK_DISPATCH_SECONDS="1",
        CELERY_VISIBILITY_TIMEOUT="3600",
    )
    purge_broker()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        celery_app.conf.task_always_eager = previous
        purge_broker()
        OUT.mkdir(exist_ok=True)
        (OUT / "integration-monitoring-worker.log").write_text(
            (tmp_path / "worker.log").read_text()[-200_000:]
        )


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def test_lighting_drift_alert_names_brightness_before_the_step_down(
    line_worker: WorkerProcess,
    rx: Receiver,
    make_workflow: Any,
    make_user: Any,
    member: Any,
    client_for: Any,
) -> None:
    workflow = make_workflow(
        "line",
        level="full",
        confidence_threshold=0.0,
        audit_rate=AUDIT_RATE,
        target_accuracy=TARGET_ACCURACY,
    )
    camera = make_user("camera")
    member(camera, workflow, submit=True)
    reviewer = make_user("rita")
    reviewer.email = "rita@example.com"
    reviewer.save()
    member(reviewer, workflow, review=True, admin=True)
    hook = client_for(reviewer).post(
        "/api/v1/workflows/line/webhooks/",
        {"url": rx.url, "events": ["alert.fired", "level.changed"]},
        format="json",
    )
    assert hook.status_code == 201, hook.content
    secret = hook.json()["secret"]

    timeline: list[str] = []
    sent = 0
    for drift in (None, "lighting"):
        for chunk in range(300 // CHUNK):
            # New parts under the new light: seeds of their own, or the drifted chunks
            # would be the first chunks' parts again, found as duplicates.
            seed = (200 if drift else 100) + chunk
            options = {"cases": CHUNK, "seed": seed, "workflow": "line"}
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
            monitoring_check_workflow(workflow_id=workflow.pk)
            _record(timeline, workflow)
            truth = demo_truth_load("line")
            while (assignment := review_next(workflow=workflow, reviewer=reviewer)) is not None:
                verdict_submit(
                    task_id=assignment.task_id,
                    reviewer=reviewer,
                    label=truth[str(assignment.task.case_id)],
                )
            # The worker judges the audit window after each audit verdict: let it finish
            # before the next chunk, so the timeline says what this chunk's audits did.
            wait_for(
                lambda: not _pending_checks(),
                timeout=60,
                what="the worker's automation checks",
            )
            workflow.refresh_from_db()
            window = step_down_status(workflow=workflow)
            timeline.append(
                f"after {sent} cases ({drift or 'normal'}): level {workflow.level}, "
                f"audit window {window.window.successes}/{window.window.n}: "
                f"{window.verdict.reason}"
            )
            _record(timeline, workflow)

    OUT.mkdir(exist_ok=True)
    (OUT / "monitoring-drift-timeline.txt").write_text("\n".join(timeline) + "\n")
    assert CaseMeasurement.objects.filter(workflow=workflow).count() == 600

    drift_alert = (
        Alert.objects.filter(workflow=workflow, kind=AlertKind.INPUT_DRIFT)
        .order_by("created_at")
        .first()
    )
    assert drift_alert is not None, "\n".join(timeline)
    assert "brightness" in drift_alert.data["metrics"], drift_alert.data
    assert "brightness" in drift_alert.message
    assert drift_alert.data["check"]

    # The audits did prove the miss, and only after the drift alert.
    step_down = LevelChange.objects.filter(workflow=workflow, automatic=True).order_by("created_at")
    assert step_down.exists(), "\n".join(timeline)
    first_step_down = step_down.first()
    assert first_step_down is not None
    assert (first_step_down.from_level, first_step_down.to_level) == ("full", "partial")
    assert drift_alert.created_at < first_step_down.created_at, "\n".join(timeline)
    assert Alert.objects.filter(
        workflow=workflow, kind=AlertKind.ACCURACY, data__level_change=first_step_down.pk
    ).exists()
    # The drift alarm came with the lighting, within 150 lit cases.
    seen = Case.objects.filter(workflow=workflow, created_at__lt=drift_alert.created_at).count()
    assert 300 < seen <= 450, "\n".join(timeline)

    # People heard of it: email to the admins, a signed webhook to the receiver.
    assert any("input drift" in message.subject for message in mail.outbox)
    requests = wait_for(
        lambda: [
            request
            for request in rx.requests
            if json.loads(request.body)["type"] == "alert.fired"
            and json.loads(request.body)["data"]["alert"]["kind"] == AlertKind.INPUT_DRIFT
        ],
        timeout=60,
        what="the input-drift alert at the webhook receiver",
    )
    fired = requests[0]
    assert signature_verify(
        secret=secret, header=fired.headers["Loopgate-Signature"], body=fired.body
    )
    assert not signature_verify(
        secret="another-secret", header=fired.headers["Loopgate-Signature"], body=fired.body
    )
    payload = json.loads(fired.body)["data"]["alert"]
    assert payload["id"] == drift_alert.pk and "brightness" in payload["data"]["metrics"]


def _pending_checks() -> bool:
    """Whether the broker still holds queued or unacknowledged messages (the worker's
    checks among them; tasks are acknowledged late, once done)."""
    from loopgate.celery import app as celery_app

    with celery_app.connection_for_write() as conn:
        client = conn.default_channel.client
        queued = any(client.llen(queue) for queue in ("default", "inference"))
        return queued or bool(client.hlen("unacked"))


def _record(timeline: list[str], workflow: Any) -> None:
    """Add the alerts and automatic step downs not yet on the timeline."""
    for alert in Alert.objects.filter(workflow=workflow).order_by("created_at"):
        entry = f"  alert {alert.pk} {alert.kind} at {alert.created_at.isoformat()}"
        if entry not in timeline:
            timeline.append(entry)
    for change in LevelChange.objects.filter(workflow=workflow, automatic=True):
        entry = (
            f"  step down {change.pk} {change.from_level} -> {change.to_level} at "
            f"{change.created_at.isoformat()}"
        )
        if entry not in timeline:
            timeline.append(entry)
