"""Deadline misses on the dashboard: the count and series of cases whose deadline passed
before a decision, the fallbacks by kind (API, page), and the Prometheus counter."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from processing.deadlines import cases_deadline_fallback
from review.services import assignment_release, review_next, verdict_submit
from tests.conftest import image_bytes
from workflows.models import Case

pytestmark = pytest.mark.django_db


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
        "admin_api": client_for(admin),
        "admin": admin,
        "rita": rita,
    }


def submit(line: dict[str, Any], seed: int, deadline_seconds: int | None = None) -> str:
    buffer = io.BytesIO(image_bytes("ok", seed=seed))
    buffer.name = "part.png"
    body: dict[str, Any] = {"image": buffer}
    if deadline_seconds is not None:
        body["deadline_seconds"] = str(deadline_seconds)
    response = line["camera"].post("/api/v1/workflows/line/cases/", body, format="multipart")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def set_fallback(line: dict[str, Any], **body: Any) -> None:
    response = line["admin_api"].put(
        "/api/v1/workflows/line/fallback/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content


def passed(case_id: str, seconds_ago: int) -> None:
    """Move the case's deadline into the past (the clock moves on)."""
    Case.objects.filter(pk=case_id).update(
        deadline_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def decide(line: dict[str, Any], case_id: str, label: str = "ok") -> None:
    while True:
        assignment = review_next(workflow=line["workflow"], reviewer=line["rita"])
        assert assignment is not None
        if str(assignment.task.case_id) == case_id:
            verdict_submit(task_id=assignment.task_id, reviewer=line["rita"], label=label)
            return
        assignment_release(task_id=assignment.task_id, reviewer=line["rita"])


def fallback_count(kind: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "loopgate_deadline_fallbacks_total", {"workflow": "line", "fallback": kind}
    )
    return value or 0.0


def test_misses_and_fallbacks_by_kind_in_the_series_the_page_and_metrics(
    line: dict[str, Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.LOOPGATE_METRICS_TOKEN = "t"
    before = {kind: fallback_count(kind) for kind in ("label", "escalate", "model", "none")}
    in_time = submit(line, 1, deadline_seconds=3600)
    decide(line, in_time)  # decided before its deadline: not a miss
    late_human = submit(line, 2, deadline_seconds=60)
    decide(line, late_human)
    Case.objects.filter(pk=late_human).update(
        deadline_at=timezone.now() - timedelta(minutes=20),
        decided_at=timezone.now() - timedelta(minutes=10),
    )  # decided by a person ten minutes after its deadline: a miss, no fallback
    labelled = submit(line, 3, deadline_seconds=60)
    escalated = submit(line, 4, deadline_seconds=60)
    submit(line, 5, deadline_seconds=3600)  # not due yet
    submit(line, 6)  # no deadline
    passed(labelled, 300)
    set_fallback(line, action="label", label="crack")
    with django_capture_on_commit_callbacks(execute=True):
        assert cases_deadline_fallback() == 1
    passed(escalated, 200)
    set_fallback(line, action="escalate")
    with django_capture_on_commit_callbacks(execute=True):
        assert cases_deadline_fallback() == 1
    assert Case.objects.get(pk=labelled).decision_source == "fallback"
    assert Case.objects.get(pk=escalated).status == "in_review"

    response = line["admin_api"].get("/api/v1/workflows/line/monitoring/?range=24h&bucket=1h")
    assert response.status_code == 200, response.content
    body = response.json()
    deadlines = body["deadlines"]
    assert deadlines["missed_total"] == 3  # late_human, labelled, escalated
    assert len(deadlines["missed"]) == len(body["buckets"])
    assert sum(deadlines["missed"]) == 3
    assert deadlines["fallback_totals"] == {"label": 1, "model": 0, "escalate": 1, "none": 0}
    assert {kind: sum(counts) for kind, counts in deadlines["fallbacks"].items()} == (
        deadlines["fallback_totals"]
    )
    # A fallback decision is not a person's: human decisions are the two verdicts.
    assert sum(body["human_decisions"]) == 2
    assert sum(body["decided"]) == 3

    page = Client()
    page.force_login(line["admin"])
    html = page.get("/workflows/line/monitoring/?range=24h&bucket=1h").content.decode()
    assert '<dd data-testid="deadlines-missed">3</dd>' in html
    assert "<dt>Fallback: safe label</dt><dd>1</dd>" in html
    assert "<dt>Fallback: escalated to admins</dt><dd>1</dd>" in html
    assert '"deadline_missed": [' in html  # the chart's data

    assert fallback_count("label") == before["label"] + 1
    assert fallback_count("escalate") == before["escalate"] + 1
    assert fallback_count("model") == before["model"]
    metrics = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    assert 'loopgate_deadline_fallbacks_total{fallback="label",workflow="line"}' in metrics


def test_a_range_without_deadlines_is_all_zero(line: dict[str, Any]) -> None:
    submit(line, 1)
    body = line["admin_api"].get("/api/v1/workflows/line/monitoring/?range=1h").json()
    assert body["deadlines"]["missed_total"] == 0
    assert set(body["deadlines"]["fallback_totals"].values()) == {0}
