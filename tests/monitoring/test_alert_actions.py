"""What a new drift or estimate alert does when an admin armed it: step the level down
and/or start a retraining run, recorded on the alert; the API, the page and the email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from automation.models import Alert, AlertKind, AlertState, LevelChange
from modelops.models import RetrainRule, TrainingRun, TrainingStatus
from modelops.retraining import retrain_rule_check
from monitoring.models import MonitoringSettings
from monitoring.services import monitoring_check_workflow
from tests.conftest import image_bytes
from tests.monitoring.test_monitoring import fill
from workflows.models import Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(make_workflow: Any, make_user: Any, member: Any) -> Any:
    workflow = make_workflow("line", level="partial", target_accuracy=0.5)
    admin = make_user("ada")
    admin.email = "ada@example.com"
    admin.save()
    member(admin, workflow, review=True, admin=True)
    member(make_user("rita"), workflow, review=True)
    MonitoringSettings.objects.create(workflow=workflow, check_every=50)
    return workflow


def arm(workflow: Any, **actions: bool) -> None:
    MonitoringSettings.objects.filter(workflow=workflow).update(**actions)


def label(workflow: Any, n: int) -> None:
    """``n`` of the workflow's cases get a human label, as reviewers' verdicts give them."""
    ids = list(Case.objects.filter(workflow=workflow).values_list("pk", flat=True)[:n])
    Case.objects.filter(pk__in=ids).update(human_label="ok", labelled_at=timezone.now())


def lights_change(workflow: Any, *, labelled: int = 0) -> Alert:
    """500 cases in normal light (``labelled`` of them labelled by reviewers), then 400
    darker ones: the input-drift alert fires."""
    start = timezone.now() + timedelta(seconds=1)
    moment = fill(workflow, 500, brightness=150, start=start, seed=1)
    label(workflow, labelled)
    monitoring_check_workflow(workflow_id=workflow.pk)
    for seed in (2, 3):
        moment = fill(workflow, 200, brightness=80, start=moment, seed=seed)
        monitoring_check_workflow(workflow_id=workflow.pk)
    return Alert.objects.get(workflow=workflow, kind=AlertKind.INPUT_DRIFT)


def estimate_drops(workflow: Any) -> Alert:
    MonitoringSettings.objects.filter(workflow=workflow).update(estimate_alert_below=0.9)
    fill(workflow, 500, brightness=150, start=timezone.now() + timedelta(seconds=1), seed=1)
    monitoring_check_workflow(workflow_id=workflow.pk)
    return Alert.objects.get(workflow=workflow, kind=AlertKind.ACCURACY_ESTIMATE)


def test_an_alert_nobody_armed_only_tells(line: Any) -> None:
    alert = lights_change(line, labelled=30)
    line.refresh_from_db()
    assert line.level == "partial"
    assert not TrainingRun.objects.exists()
    assert "actions" not in alert.data


def test_an_armed_drift_alert_starts_a_retraining_run_as_the_rule_would(line: Any) -> None:
    RetrainRule.objects.create(workflow=line, enabled=True, every_n_labels=500, epochs=3)
    arm(line, retrain_on_drift=True)
    alert = lights_change(line, labelled=30)
    [run] = TrainingRun.objects.all()
    assert run.status == TrainingStatus.QUEUED
    assert run.trigger == "alert:input_drift" and f"alert {alert.pk}" in run.reason
    assert run.epochs_total == 3  # the rule's setting
    assert run.created_by is None
    action = alert.data["actions"]["retraining"]
    assert action["done"] and action["training_run"] == run.pk
    assert "step_down" not in alert.data["actions"]
    line.refresh_from_db()
    assert line.level == "partial"


def test_both_actions_step_down_then_retrain_and_the_rule_does_not_start_a_second_run(
    line: Any,
) -> None:
    rule = RetrainRule.objects.create(workflow=line, enabled=True, after_step_down=True)
    arm(line, step_down_on_drift=True, retrain_on_drift=True)
    alert = lights_change(line, labelled=30)
    line.refresh_from_db()
    assert line.level == "assistance"
    change = LevelChange.objects.get(workflow=line, automatic=True)
    assert (change.from_level, change.to_level) == ("partial", "assistance")
    assert change.evidence == {"check": "input_drift", "alert": alert.pk}
    assert f"alert {alert.pk}" in change.reason
    actions = alert.data["actions"]
    assert actions["step_down"]["level_change"] == change.pk
    assert actions["step_down"]["to"] == "assistance"
    [run] = TrainingRun.objects.all()
    assert actions["retraining"]["training_run"] == run.pk
    # The run ends; the rule sees the step down the alert made as already answered.
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingStatus.SUCCEEDED)
    rule.refresh_from_db()
    assert rule.last_triggered_at is not None and rule.last_triggered_at >= change.created_at
    assert retrain_rule_check(rule=rule) is None
    assert TrainingRun.objects.count() == 1


def test_a_refused_action_is_recorded_and_the_alert_stands(line: Any, settings: Any) -> None:
    line.level = "assistance"
    line.save(update_fields=["level"])
    arm(line, step_down_on_drift=True, retrain_on_drift=True)
    alert = lights_change(line, labelled=5)  # fewer than the 20 labels a run needs
    assert alert.state == AlertState.FIRING
    actions = alert.data["actions"]
    assert not actions["step_down"]["done"]
    assert "the level is assistance" in actions["step_down"]["summary"]
    assert not actions["retraining"]["done"]
    assert "at least 20 human-labelled cases" in actions["retraining"]["summary"]
    assert not TrainingRun.objects.exists()
    assert not LevelChange.objects.filter(workflow=line).exists()


def test_a_run_already_active_is_not_doubled(line: Any) -> None:
    arm(line, retrain_on_drift=True)
    first = TrainingRun.objects.create(
        workflow=line, architecture="surface_cnn", input_size=64, seed=1, epochs_total=1
    )
    alert = lights_change(line, labelled=30)
    assert list(TrainingRun.objects.values_list("pk", flat=True)) == [first.pk]
    assert (
        f"training run {first.pk} is still queued"
        in (alert.data["actions"]["retraining"]["summary"])
    )


def test_an_armed_estimate_alert_steps_down(line: Any) -> None:
    arm(line, step_down_on_estimate=True, step_down_on_drift=False)
    alert = estimate_drops(line)
    line.refresh_from_db()
    assert line.level == "assistance"
    change = LevelChange.objects.get(workflow=line, automatic=True)
    assert "accuracy estimate alert" in change.reason
    assert alert.data["actions"]["step_down"]["level_change"] == change.pk
    assert not TrainingRun.objects.exists()


def test_the_email_says_what_the_alert_triggered(
    line: Any, django_capture_on_commit_callbacks: Any
) -> None:
    arm(line, step_down_on_estimate=True)
    with django_capture_on_commit_callbacks(execute=True):
        estimate_drops(line)
    [message] = [m for m in mail.outbox if "accuracy estimate" in m.subject]
    assert "Triggered: stepped down from partial to assistance" in message.body


# --- The settings API and the page ---------------------------------------------------------


def client_of(username: str) -> APIClient:
    from django.contrib.auth import get_user_model

    client = APIClient()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_the_api_reads_and_sets_the_alert_actions(line: Any) -> None:
    url = "/api/v1/workflows/line/monitoring/settings/"
    admin = client_of("ada")
    body = admin.get(url).json()
    assert {name: body[name] for name in ("step_down_on_drift", "retrain_on_estimate")} == {
        "step_down_on_drift": False,
        "retrain_on_estimate": False,
    }
    changed = admin.patch(
        url, {"retrain_on_drift": True, "step_down_on_estimate": True}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["retrain_on_drift"] and changed.json()["step_down_on_estimate"]
    row = MonitoringSettings.objects.get(workflow=line)
    assert row.retrain_on_drift and row.step_down_on_estimate and not row.retrain_on_estimate
    wrong = admin.patch(url, {"retrain_on_drift": "sometimes"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "retrain_on_drift"
    refused = client_of("rita").patch(url, {"retrain_on_drift": False}, format="json")
    assert refused.status_code == 403
    assert MonitoringSettings.objects.get(workflow=line).retrain_on_drift


def test_the_page_arms_the_actions_for_admins_and_shows_them_to_reviewers(line: Any) -> None:
    page = "/workflows/line/monitoring/"
    admin = client_of("ada")
    assert 'name="retrain_on_estimate"' in admin.get(page).content.decode()
    saved = admin.post(
        page, {"form": "alert_actions", "step_down_on_drift": "on", "retrain_on_drift": "on"}
    )
    assert saved.status_code == 302
    row = MonitoringSettings.objects.get(workflow=line)
    assert row.step_down_on_drift and row.retrain_on_drift and not row.step_down_on_estimate
    # An unchecked box turns its action off.
    admin.post(page, {"form": "alert_actions", "retrain_on_drift": "on"})
    row.refresh_from_db()
    assert not row.step_down_on_drift and row.retrain_on_drift

    reviewer = client_of("rita")
    shown = reviewer.get(page).content.decode()
    assert "An input-drift alert starts a retraining run" in shown
    assert 'name="retrain_on_drift"' not in shown
    denied = reviewer.post(page, {"form": "alert_actions"})
    assert denied.status_code == 403
    row.refresh_from_db()
    assert row.retrain_on_drift


def test_the_page_lists_what_an_alert_triggered(line: Any) -> None:
    Alert.objects.create(
        workflow=line,
        kind=AlertKind.INPUT_DRIFT,
        message="brightness moved",
        data={"actions": {"step_down": {"done": True, "summary": "stepped down from full"}}},
    )
    shown = client_of("rita").get("/workflows/line/monitoring/?range=1h").content.decode()
    assert "Triggered: stepped down from full." in shown


# --- With the real pipeline ----------------------------------------------------------------


def test_real_lit_parts_fire_an_armed_alert_that_steps_down_and_queues_retraining(
    make_workflow: Any, make_user: Any, member: Any
) -> None:
    """Demo images through the worker's service, measured by the real model: 100 parts in
    normal light (labelled by reviewers), then lit ones until the alarm."""
    from processing.services import case_create, cases_process

    workflow = make_workflow("lit", level="full", confidence_threshold=0.0)
    member(make_user("ada"), workflow, admin=True)
    MonitoringSettings.objects.create(
        workflow=workflow,
        reference_size=100,
        window=100,
        check_every=50,
        step_down_on_drift=True,
        retrain_on_drift=True,
    )
    labels = ("ok", "scratch", "crack", "stain")

    def send(n: int, *, seed: int, drift: str | None) -> list[str]:
        ids = [
            str(
                case_create(
                    workflow=workflow,
                    image_data=image_bytes(labels[k % 4], seed=seed + k, drift=drift),
                    external_id=None,
                    metadata={},
                    submitted_by=None,
                ).case.id
            )
            for k in range(n)
        ]
        cases_process(case_ids=ids)
        return ids

    normal = send(100, seed=0, drift=None)
    for k, case_id in enumerate(normal):
        Case.objects.filter(pk=case_id).update(
            human_label=labels[k % 4], labelled_at=timezone.now()
        )
    for batch in range(3):
        send(50, seed=1000 + 50 * batch, drift="lighting")
        monitoring_check_workflow(workflow_id=workflow.pk)
    alert = Alert.objects.get(workflow=workflow, kind=AlertKind.INPUT_DRIFT)
    assert "brightness" in alert.data["metrics"]
    workflow.refresh_from_db()
    assert workflow.level == "partial"
    actions = alert.data["actions"]
    assert actions["step_down"]["done"] and actions["retraining"]["done"]
    run = TrainingRun.objects.get(pk=actions["retraining"]["training_run"])
    assert run.trigger == "alert:input_drift" and run.status == TrainingStatus.QUEUED
