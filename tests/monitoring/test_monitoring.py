"""Monitoring: what the worker measures, the drift check and its alerts, the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from automation.models import Alert, AlertKind, AlertState
from monitoring.models import CaseMeasurement, DriftCheck, MonitoringSettings
from monitoring.services import monitoring_check_workflow
from tests.conftest import image_bytes
from workflows.models import Case

pytestmark = pytest.mark.django_db


def submit(workflow: Any, n: int, *, metadata: dict[str, Any] | None = None) -> list[str]:
    from processing.services import case_create

    return [
        str(
            case_create(
                workflow=workflow,
                image_data=image_bytes("scratch" if k % 3 else "ok", seed=k),
                external_id=None,
                metadata=metadata or {},
                submitted_by=None,
            ).case.id
        )
        for k in range(n)
    ]


def test_the_worker_stores_one_measurement_per_case_with_stage_times(make_workflow: Any) -> None:
    from processing.services import cases_process

    workflow = make_workflow("line", level="full", confidence_threshold=0.0)
    ids = submit(workflow, 3, metadata={"camera": "a", "shift": 2})
    assert cases_process(case_ids=ids) == 3
    rows = {str(row.case_id): row for row in CaseMeasurement.objects.all()}
    assert set(rows) == set(ids)
    for case_id, row in rows.items():
        case = Case.objects.get(pk=case_id)
        prediction = case.deciding_prediction
        assert prediction is not None
        assert row.model_version_id == prediction.model_version_id
        assert (row.label, row.confidence) == (
            prediction.label,
            pytest.approx(prediction.confidence),
        )
        assert (row.width, row.height, row.file_size) == (
            case.image_width,
            case.image_height,
            case.image_bytes,
        )
        assert 0 < row.brightness < 255 and row.contrast > 0 and row.sharpness > 0
        assert row.metadata_keys == ["camera", "shift"]
        assert row.embedding is not None and len(row.embedding) == 32
        assert row.received_at <= row.scoring_started_at <= row.scored_at <= row.routed_at
        assert case.decided_at is not None and row.routed_at <= case.decided_at + timedelta(
            seconds=1
        )
        assert row.error_stage == ""


def test_a_redelivered_batch_does_not_measure_twice(make_workflow: Any) -> None:
    from processing.services import cases_process

    workflow = make_workflow("line", level="shadow")
    ids = submit(workflow, 2)
    cases_process(case_ids=ids)
    cases_process(case_ids=ids)
    assert CaseMeasurement.objects.count() == 2


def test_monitoring_off_measures_nothing(make_workflow: Any, settings: Any) -> None:
    from processing.services import cases_process

    settings.LOOPGATE_MONITORING = False
    workflow = make_workflow("line", level="shadow")
    assert cases_process(case_ids=submit(workflow, 2)) == 2
    assert CaseMeasurement.objects.count() == 0


def test_an_unreadable_image_is_measured_as_a_decode_error(make_workflow: Any) -> None:
    from processing.services import cases_process

    workflow = make_workflow("line", level="shadow")
    [case_id] = submit(workflow, 1)
    case = Case.objects.get(pk=case_id)
    case.image.storage.delete(case.image.name)
    cases_process(case_ids=[case_id])
    row = CaseMeasurement.objects.get(case_id=case_id)
    assert row.error_stage == "decode" and row.brightness is None


# --- The drift check, on measurements written directly -------------------------------------


def fill(workflow: Any, n: int, *, brightness: float, start: Any, seed: int) -> Any:
    """``n`` measured cases of the serving version, one second apart from ``start``."""
    from modelops.models import Deployment

    version = Deployment.objects.get(workflow=workflow, role="serving").model_version
    rng = np.random.default_rng(seed)
    cases = [
        Case(
            workflow=workflow,
            image=f"x/{seed}-{k}.png",
            image_format="PNG",
            image_width=128,
            image_height=128,
            image_bytes=1000,
            image_sha256="0" * 64,
            status="decided",
        )
        for k in range(n)
    ]
    Case.objects.bulk_create(cases)
    rows = []
    for k, case in enumerate(cases):
        at = start + timedelta(seconds=k)
        rows.append(
            CaseMeasurement(
                case=case,
                workflow=workflow,
                model_version=version,
                received_at=at,
                scoring_started_at=at,
                scored_at=at,
                routed_at=at,
                width=128,
                height=128,
                file_size=int(rng.normal(30000, 2000)),
                image_format="PNG",
                brightness=float(rng.normal(brightness, 12)),
                contrast=float(rng.normal(20, 3)),
                sharpness=float(rng.normal(150, 40)),
                saturation=float(rng.normal(0.05, 0.01)),
                clipped=0.0,
                label="ok" if rng.uniform() < 0.6 else "scratch",
                confidence=float(rng.uniform(0.6, 1.0)),
                margin=float(rng.uniform(0.2, 1.0)),
                entropy=float(rng.uniform(0, 0.5)),
                embedding=rng.normal(size=32).round(3).tolist(),
            )
        )
    CaseMeasurement.objects.bulk_create(rows)
    return start + timedelta(seconds=n)


@pytest.fixture
def watched(make_workflow: Any, make_user: Any, member: Any) -> Any:
    workflow = make_workflow("line", level="partial", target_accuracy=0.5)
    admin = make_user("ada")
    admin.email = "ada@example.com"
    admin.save()
    member(admin, workflow, review=True, admin=True)
    MonitoringSettings.objects.create(workflow=workflow, check_every=50)
    return workflow


def test_no_serving_version_or_too_few_cases_raise_nothing(watched: Any) -> None:
    start = timezone.now() + timedelta(seconds=1)
    fill(watched, 150, brightness=150, start=start, seed=1)
    check = monitoring_check_workflow(workflow_id=watched.pk)
    assert check is not None and not check.enough_data
    assert "not enough cases" in check.report["reason"]
    assert not Alert.objects.exists()


def test_a_lighting_shift_raises_one_input_drift_alert_naming_brightness_then_it_resolves(
    watched: Any,
) -> None:
    moment = timezone.now() + timedelta(seconds=1)
    moment = fill(watched, 300, brightness=150, start=moment, seed=1)
    moment = fill(watched, 200, brightness=150, start=moment, seed=2)
    first = monitoring_check_workflow(workflow_id=watched.pk)
    assert first is not None and first.enough_data and first.drifted == []
    # Fewer than check_every new cases: no new check.
    moment = fill(watched, 20, brightness=90, start=moment, seed=3)
    assert monitoring_check_workflow(workflow_id=watched.pk) is None
    moment = fill(watched, 180, brightness=90, start=moment, seed=4)
    second = monitoring_check_workflow(workflow_id=watched.pk)
    assert second is not None and "brightness" in second.drifted
    assert second.alarm == []  # one drifted check is not yet persistent
    moment = fill(watched, 60, brightness=90, start=moment, seed=5)
    assert not Alert.objects.exists()
    third = monitoring_check_workflow(workflow_id=watched.pk)
    assert third is not None and "brightness" in third.alarm
    [alert] = Alert.objects.filter(kind=AlertKind.INPUT_DRIFT)
    assert alert.state == AlertState.FIRING and "brightness" in alert.message
    assert alert.data["metrics"] == third.alarm
    # Still drifted: the same alert, not a second one.
    moment = fill(watched, 60, brightness=90, start=moment, seed=6)
    monitoring_check_workflow(workflow_id=watched.pk)
    assert Alert.objects.filter(kind=AlertKind.INPUT_DRIFT).count() == 1
    # Back to normal light: resolved by the check.
    moment = fill(watched, 250, brightness=150, start=moment, seed=7)
    monitoring_check_workflow(workflow_id=watched.pk)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and "match the reference" in alert.resolution
    assert DriftCheck.objects.filter(workflow=watched).count() == 5


def test_a_new_alert_is_emailed_to_the_workflows_admins(
    watched: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from automation.services import alert_raise

    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(
            workflow=watched, kind=AlertKind.INPUT_DRIFT, message="brightness moved", data={}
        )
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert "input drift" in message.subject and "brightness moved" in message.body


def test_the_estimate_alert_fires_when_the_label_free_estimate_drops(watched: Any) -> None:
    MonitoringSettings.objects.filter(workflow=watched).update(estimate_alert_below=0.9)
    moment = timezone.now() + timedelta(seconds=1)
    moment = fill(watched, 500, brightness=150, start=moment, seed=1)
    check = monitoring_check_workflow(workflow_id=watched.pk)
    assert check is not None and check.estimate["method"] == "confidence"
    [alert] = Alert.objects.filter(kind=AlertKind.ACCURACY_ESTIMATE)
    assert "label-free accuracy estimate" in alert.message
    assert alert.data["estimate"] == pytest.approx(check.estimate["estimate"])


def test_step_down_on_drift_only_when_the_admin_enabled_it(watched: Any) -> None:
    MonitoringSettings.objects.filter(workflow=watched).update(step_down_on_drift=True)
    moment = timezone.now() + timedelta(seconds=1)
    moment = fill(watched, 500, brightness=150, start=moment, seed=1)
    monitoring_check_workflow(workflow_id=watched.pk)
    for seed in (2, 3):
        moment = fill(watched, 200, brightness=80, start=moment, seed=seed)
        monitoring_check_workflow(workflow_id=watched.pk)
    watched.refresh_from_db()
    assert watched.level == "assistance"
    change = watched.level_changes.first()
    assert change.automatic and "input drift" in change.reason


# --- Alerts by people -----------------------------------------------------------------


@pytest.fixture
def admin_client(watched: Any) -> APIClient:
    from django.contrib.auth import get_user_model

    client = APIClient()
    client.force_login(get_user_model().objects.get(username="ada"))
    return client


def test_acknowledge_then_resolve_keeps_who_and_why(watched: Any, admin_client: APIClient) -> None:
    alert = Alert.objects.create(workflow=watched, kind="input_drift", message="m")
    url = f"/api/v1/workflows/line/alerts/{alert.pk}/"
    missing = admin_client.post(url + "acknowledge/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "note"
    blank = admin_client.post(url + "acknowledge/", {"note": "  "}, format="json")
    assert blank.status_code == 400
    done = admin_client.post(url + "acknowledge/", {"note": "checking the lamp"}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "acknowledged" and done.json()["acknowledged_by"] == "ada"
    again = admin_client.post(url + "acknowledge/", {"note": "again"}, format="json")
    assert again.status_code == 409
    resolved = admin_client.post(url + "resolve/", {"note": "lamp replaced"}, format="json")
    assert resolved.status_code == 200
    body = resolved.json()
    assert body["state"] == "resolved" and body["resolved_by"] == "ada"
    assert "lamp replaced" in body["resolution"]
    assert admin_client.post(url + "resolve/", {"note": "x"}, format="json").status_code == 409
    huge = admin_client.post(f"/api/v1/workflows/line/alerts/{2**70}/resolve/", {"note": "x"})
    assert huge.status_code == 404


def test_an_acknowledged_alert_is_still_active_for_the_checks(watched: Any) -> None:
    from automation.selectors import alerts_firing

    alert = Alert.objects.create(workflow=watched, kind="input_drift", message="m")
    Alert.objects.filter(pk=alert.pk).update(state=AlertState.ACKNOWLEDGED)
    assert [a.pk for a in alerts_firing(workflow=watched, kind="input_drift")] == [alert.pk]


# --- The API ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=2026-13-40T00:00:00Z", "until"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("bucket=7m", "bucket"),
        ("since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z&bucket=5m", "bucket"),
        ("model_version=abc", "model_version"),
        ("model_version=99999999999999999999", "model_version"),
        ("until=0001-01-01T00:00:00Z", "until"),
        ("since=9999-12-31T23:59:59Z", "since"),
        ("range=2y", "range"),
    ],
)
def test_the_api_names_a_bad_parameter(admin_client: APIClient, query: str, field: str) -> None:
    response = admin_client.get(f"/api/v1/workflows/line/monitoring/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_the_api_returns_the_series(watched: Any, admin_client: APIClient) -> None:
    from modelops.models import Deployment

    start = timezone.now() - timedelta(minutes=30)
    Deployment.objects.filter(workflow=watched).update(created_at=start - timedelta(minutes=1))
    fill(watched, 300, brightness=150, start=start, seed=1)
    monitoring_check_workflow(workflow_id=watched.pk, force=True)
    response = admin_client.get("/api/v1/workflows/line/monitoring/?range=1h&bucket=5m")
    assert response.status_code == 200, response.content
    body = response.json()
    size = len(body["buckets"])
    assert size in (12, 13)
    for name in ("volume", "automation_rate", "human_decisions", "human_override_rate"):
        assert len(body[name]) == size
    assert set(body["latency"]) == {"queue_wait", "model", "routing", "human", "total"}
    brightness = [cell["mean"] for cell in body["inputs"]["brightness"] if cell["n"]]
    assert brightness and all(100 < value < 200 for value in brightness)
    assert sum(sum(row) for row in body["class_mix"]["counts"]) == 300
    assert sum(sum(row) for row in body["confidence_histogram"]["counts"]) == 300
    assert body["reference"]["metrics"]["brightness"]["n"] == 300
    assert body["drift_status"]["state"] in {"ok", "insufficient_data"}
    assert body["queue"]["depth"] == 0


def test_settings_refuse_half_a_pinned_reference_and_unknown_fields(
    admin_client: APIClient,
) -> None:
    url = "/api/v1/workflows/line/monitoring/settings/"
    half = admin_client.patch(url, {"reference_from": "2026-01-01T00:00:00Z"}, format="json")
    assert half.status_code == 400 and half.json()["error"]["field"] == "reference_from"
    unknown = admin_client.patch(url, {"colour": "red"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "colour"
    low = admin_client.patch(url, {"window": 5}, format="json")
    assert low.status_code == 400
    pinned = admin_client.patch(
        url,
        {"reference_from": "2026-01-01T00:00:00Z", "reference_until": "2026-01-02T00:00:00Z"},
        format="json",
    )
    assert pinned.status_code == 200 and pinned.json()["reference_from"].startswith("2026-01-01")


def test_metrics_expose_stage_and_model_histograms_after_a_batch(
    make_workflow: Any, settings: Any
) -> None:
    from processing.services import cases_process

    settings.LOOPGATE_METRICS_TOKEN = "t"
    workflow = make_workflow("line", level="full", confidence_threshold=0.0)
    cases_process(case_ids=submit(workflow, 2))
    body = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    assert 'loopgate_stage_seconds_bucket{le="0.005",stage="queue_wait",workflow="line"}' in body
    assert 'loopgate_model_seconds_count{model_version="surface-cnn:v1",workflow="line"}' in body
    assert 'loopgate_cases_routed_total{outcome="model",workflow="line"}' in body
    assert "loopgate_worker_memory_bytes" in body
    assert APIClient().get("/metrics").status_code == 401
