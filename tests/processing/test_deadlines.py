"""Deadlines and the fallback when no human decides in time, on a simulated clock."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from integrations import services as webhooks
from integrations.models import WebhookEvent
from processing.deadlines import case_deadline_fallback, cases_deadline_fallback
from review.models import ReviewTask
from review.services import review_next
from tests.conftest import image_bytes
from workflows.models import Case, CaseEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/workflows/line/cases/"


@pytest.fixture
def line(make_workflow: Any, make_user: Any, member: Any, client_for: Any) -> dict[str, Any]:
    workflow = make_workflow("line", level="human_only")
    camera, admin, rita = make_user("camera"), make_user("ada"), make_user("rita")
    member(camera, workflow, submit=True)
    member(admin, workflow, admin=True, review=True)
    member(rita, workflow, review=True)
    return {
        "workflow": workflow,
        "camera": client_for(camera),
        "admin_client": client_for(admin),
        "admin": admin,
        "rita": rita,
    }


def submit(line: dict[str, Any], seed: int = 1, **fields: Any) -> Any:
    buffer = io.BytesIO(image_bytes("ok", seed=seed))
    buffer.name = "part.png"
    return line["camera"].post(URL, {"image": buffer, **fields}, format="multipart")


def fallback(line: dict[str, Any], **body: Any) -> Any:
    return line["admin_client"].put(
        "/api/v1/workflows/line/fallback/", json.dumps(body), content_type="application/json"
    )


def later(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


# --- Refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"deadline_seconds": "0"}, "deadline_seconds"),
        ({"deadline_seconds": "abc"}, "deadline_seconds"),
        ({"deadline_seconds": str(31 * 24 * 3600)}, "deadline_seconds"),
        ({"deadline": "tomorrow"}, "deadline"),
        ({"deadline": "2026-12-01T08:00:00"}, "deadline"),  # no time zone
        ({"deadline": "2001-01-01T00:00:00Z"}, "deadline"),  # in the past
        ({"deadline": "2099-01-01T00:00:00Z"}, "deadline"),  # too far
        ({"deadline_seconds": "60", "deadline": "2099-01-01T00:00:00Z"}, "deadline"),
    ],
)
def test_bad_deadlines_are_refused_and_nothing_stored(
    line: dict[str, Any], fields: dict[str, str], field: str
) -> None:
    response = submit(line, **fields)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert not Case.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"action": "label", "label": "not-a-label"}, "label"),
        ({"action": "model"}, "threshold"),
        ({"action": "model", "threshold": 1.5}, "threshold"),
        ({"action": "none", "colour": 1}, "colour"),
    ],
)
def test_bad_fallbacks_are_refused(line: dict[str, Any], body: dict[str, Any], field: str) -> None:
    response = fallback(line, **body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field


def test_not_due_decided_or_without_deadline_is_left_alone(line: dict[str, Any]) -> None:
    fallback(line, action="label", label="ok")
    due = submit(line, deadline_seconds="60").json()
    plain = submit(line, seed=2).json()
    assert case_deadline_fallback(case_id=due["id"], now=later(30)) is None
    assert case_deadline_fallback(case_id=plain["id"], now=later(10_000)) is None
    assignment = review_next(workflow=line["workflow"], reviewer=line["rita"])
    from review.services import verdict_submit

    verdict_submit(task_id=assignment.task_id, reviewer=line["rita"], label="scratch")
    assert Case.objects.get(pk=due["id"]).decision_source == "human"
    assert case_deadline_fallback(case_id=due["id"], now=later(120)) is None
    assert Case.objects.get(pk=due["id"]).decision_label == "scratch"


# --- Each fallback ----------------------------------------------------------------------


def test_label_fallback_decides_with_the_safe_label(line: dict[str, Any]) -> None:
    assert fallback(line, action="label", label="crack").status_code == 200
    case_id = submit(line, deadline_seconds="60").json()["id"]
    assert case_deadline_fallback(case_id=case_id, now=later(61)) == "label"
    case = Case.objects.get(pk=case_id)
    assert (case.status, case.decision_label, case.decision_source) == (
        "decided",
        "crack",
        "fallback",
    )
    event = CaseEvent.objects.filter(case=case, to_status="decided").get()
    assert "deadline" in event.reason and "safe label 'crack'" in event.reason
    assert ReviewTask.objects.get(case=case).status == "cancelled"
    assert review_next(workflow=line["workflow"], reviewer=line["rita"]) is None
    assert case_deadline_fallback(case_id=case_id, now=later(200)) is None  # once
    body = line["camera"].get(f"/api/v1/cases/{case_id}/").json()
    assert body["decision"]["source"] == "fallback"
    assert body["deadline_at"] is not None


def test_escalate_fallback_sends_the_case_to_admins(line: dict[str, Any]) -> None:
    fallback(line, action="escalate")
    case_id = submit(line, deadline_seconds="60").json()["id"]
    assert case_deadline_fallback(case_id=case_id, now=later(61)) == "escalate"
    case = Case.objects.get(pk=case_id)
    assert case.status == "in_review"
    assert ReviewTask.objects.get(case=case).needs_adjudication
    assert CaseEvent.objects.filter(case=case, kind="deadline_missed").exists()
    assert review_next(workflow=line["workflow"], reviewer=line["rita"]) is None
    assignment = review_next(workflow=line["workflow"], reviewer=line["admin"])
    assert assignment is not None and str(assignment.task.case_id) == case_id


def model_opinion(case_id: str, line: dict[str, Any], confidence: float) -> None:
    from workflows.models import Prediction

    version = line["workflow"].deployments.get(role="serving").model_version
    Prediction.objects.create(
        case_id=case_id,
        model_version=version,
        role="serving",
        scores={"stain": confidence},
        label="stain",
        confidence=confidence,
    )


def test_model_fallback_above_threshold_takes_the_models_answer(line: dict[str, Any]) -> None:
    fallback(line, action="model", threshold=0.7)
    case_id = submit(line, deadline_seconds="60").json()["id"]
    model_opinion(case_id, line, 0.82)
    assert case_deadline_fallback(case_id=case_id, now=later(61)) == "model"
    case = Case.objects.get(pk=case_id)
    assert (case.decision_label, case.decision_source, case.decision_confidence) == (
        "stain",
        "fallback",
        0.82,
    )
    assert case.decision_model_version is not None


def test_model_fallback_below_threshold_escalates(line: dict[str, Any]) -> None:
    fallback(line, action="model", threshold=0.9)
    case_id = submit(line, deadline_seconds="60").json()["id"]
    model_opinion(case_id, line, 0.6)
    assert case_deadline_fallback(case_id=case_id, now=later(61)) == "escalate"
    case = Case.objects.get(pk=case_id)
    assert case.status == "in_review"
    event = CaseEvent.objects.get(case=case, kind="deadline_missed")
    assert "below the fallback threshold 0.9" in event.reason


def test_no_fallback_only_records_the_miss(line: dict[str, Any]) -> None:
    case_id = submit(line, deadline_seconds="60").json()["id"]
    assert case_deadline_fallback(case_id=case_id, now=later(61)) == "none"
    assert Case.objects.get(pk=case_id).status == "in_review"
    assert CaseEvent.objects.filter(case_id=case_id, kind="deadline_missed").exists()


# --- The queue and the end to end --------------------------------------------------------


def test_the_queue_hands_out_the_nearest_deadline_first(line: dict[str, Any]) -> None:
    first = submit(line, seed=1).json()["id"]  # oldest, no deadline
    far = submit(line, seed=2, deadline_seconds="3600").json()["id"]
    near = submit(line, seed=3, deadline_seconds="60").json()["id"]
    order = []
    for reviewer in ("rita", "admin"):
        assignment = review_next(workflow=line["workflow"], reviewer=line[reviewer])
        order.append(str(assignment.task.case_id))
    assert order == [near, far]
    assert first not in order


def test_end_to_end_deadline_passes_fallback_decides_and_webhook_fires(
    line: dict[str, Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from tests.integrations.receiver import receiver

    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    fallback(line, action="label", label="ok")
    with receiver() as rx:
        created = webhooks.webhook_create(
            workflow=line["workflow"],
            url=rx.url,
            events=["case.decided", "case.deadline_missed"],
            actor=line["admin"],
        )
        deadline = (timezone.now() + timedelta(minutes=5)).isoformat()
        case_id = submit(line, deadline=deadline).json()["id"]
        assert cases_deadline_fallback(now=later(60)) == 0  # not yet
        with django_capture_on_commit_callbacks(execute=True):
            assert cases_deadline_fallback(now=later(301)) == 1
        webhooks.webhook_drain(webhook_id=created.webhook.pk)
        bodies = [json.loads(r.body) for r in rx.wait(2)]
    assert [b["type"] for b in bodies] == ["case.decided", "case.deadline_missed"]
    assert bodies[0]["data"]["case"]["id"] == case_id
    assert bodies[0]["data"]["case"]["decision"]["source"] == "fallback"
    assert bodies[1]["data"]["fallback"] == "label"
    assert WebhookEvent.objects.count() == 2
