"""The automation services: the automatic step down, alerts, hysteresis and drift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from automation import tasks
from automation.models import Alert, LevelChange
from automation.selectors import audit_window
from automation.services import (
    automation_check_all,
    automation_check_queue,
    automation_check_workflow,
    automation_update,
    evidence_for_workflow,
)
from tests.automation.conftest import LABELS

pytestmark = pytest.mark.django_db


def at_level(workflow: Any, level: str) -> Any:
    """Test setup: put the workflow at ``level`` without a log entry."""
    workflow.level = level
    workflow.save(update_fields=["level"])
    return workflow


class TestStepDown:
    def test_bad_audits_step_full_down_to_partial_with_log_and_alert(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        workflow = at_level(automation_workflow(), "full")
        labelled.simulate(workflow, 100, accuracy=0.7, reason="audit", level="full", seed=1)
        change = automation_check_workflow(workflow_id=workflow.pk)
        assert change is not None
        workflow.refresh_from_db()
        assert workflow.level == "partial"
        assert (change.from_level, change.to_level) == ("full", "partial")
        assert change.automatic and change.actor is None and not change.overridden
        assert change.before["level"] == "full" and change.after["level"] == "partial"
        assert change.reason.startswith(
            "automatic step down from full to partial: accuracy upper bound"
        )
        assert change.evidence["window"]["n"] == 100
        assert change.evidence["upper_bound"] < workflow.target_accuracy
        assert change.evidence["confidence"] == 0.99
        alert = Alert.objects.get()
        assert (alert.kind, alert.state) == ("accuracy", "firing")
        assert alert.data["level_change"] == change.pk
        assert (alert.data["from"], alert.data["to"]) == ("full", "partial")

    def test_the_step_down_and_its_alert_reach_webhooks_in_one_transaction(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        from integrations.models import Webhook, WebhookEvent

        workflow = at_level(automation_workflow(), "full")
        Webhook.objects.create(
            workflow=workflow,
            url="https://93.184.215.14/hook",
            events=["level.changed", "alert.fired", "alert.resolved"],
            secret="s" * 32,
        )
        labelled.simulate(workflow, 100, accuracy=0.7, reason="audit", level="full", seed=1)
        assert automation_check_workflow(workflow_id=workflow.pk) is not None
        alert = Alert.objects.get()
        events = list(WebhookEvent.objects.order_by("created_at", "pk"))
        assert [e.type for e in events] == ["level.changed", "alert.fired"]
        assert events[1].payload["alert"]["id"] == alert.pk
        assert events[1].payload["alert"]["kind"] == "accuracy"
        # Raising the level again resolves the alert: announced too.
        labelled.simulate(workflow, 300, accuracy=0.99, reason="audit", level="full", seed=9)
        automation_update(workflow=workflow, actor=None, reason="fixed", changes={"level": "full"})
        resolved = WebhookEvent.objects.get(type="alert.resolved")
        assert resolved.payload["alert"]["id"] == alert.pk
        assert resolved.payload["alert"]["state"] == "resolved"

    def test_one_level_at_a_time_with_a_fresh_window(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        workflow = at_level(automation_workflow(), "full")
        labelled.simulate(workflow, 100, accuracy=0.6, reason="audit", level="full", seed=2)
        assert automation_check_workflow(workflow_id=workflow.pk) is not None
        assert automation_check_workflow(workflow_id=workflow.pk) is None, (
            "the window starts afresh"
        )
        workflow.refresh_from_db()
        assert workflow.level == "partial"
        assert audit_window(workflow=workflow).n == 0
        labelled.simulate(workflow, 100, accuracy=0.6, reason="audit", level="partial", seed=3)
        second = automation_check_workflow(workflow_id=workflow.pk)
        assert second is not None and second.to_level == "assistance"
        workflow.refresh_from_db()
        assert workflow.level == "assistance"
        assert automation_check_workflow(workflow_id=workflow.pk) is None, "assistance is the floor"
        assert Alert.objects.filter(kind="accuracy", state="firing").count() == 2

    def test_a_stable_model_and_a_short_window_are_left_alone(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        workflow = at_level(automation_workflow(), "full")
        labelled.simulate(workflow, 10, accuracy=0.0, reason="audit", level="full", seed=4)
        assert automation_check_workflow(workflow_id=workflow.pk) is None, "below min_samples"
        labelled.simulate(workflow, 300, accuracy=0.97, reason="audit", level="full", seed=5)
        assert automation_check_workflow(workflow_id=workflow.pk) is None
        workflow.refresh_from_db()
        assert workflow.level == "full"
        assert not LevelChange.objects.exists() and not Alert.objects.exists()

    def test_only_audits_of_the_current_level_after_the_last_level_change_count(
        self, automation_workflow: Any, labelled: Any, make_user: Any
    ) -> None:
        workflow = automation_workflow(level="partial")
        labelled.simulate(workflow, 100, accuracy=0.5, reason="audit", level="partial", seed=6)
        root = make_user("root", superuser=True)
        automation_update(
            workflow=workflow, actor=root, reason="pilot", changes={"level": "full"}, override=True
        )
        assert audit_window(workflow=workflow).n == 0
        assert automation_check_workflow(workflow_id=workflow.pk) is None
        labelled.simulate(workflow, 30, accuracy=0.5, reason="audit", level="partial", seed=7)
        assert automation_check_workflow(workflow_id=workflow.pk) is None, "routed at partial"
        workflow.refresh_from_db()
        assert workflow.level == "full"

    def test_other_versions_audits_do_not_count(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        from modelops.models import ModelVersion

        workflow = at_level(automation_workflow(), "full")
        old = ModelVersion.objects.create(
            name="fake-cnn",
            version=0,
            architecture="fake",
            labels=list(LABELS),
            weights="models/old.pt",
            sha256="1" * 64,
        )
        rows = [("ok", 0.95, "crack")] * 100
        labelled.add(workflow, rows, reason="audit", level="full", version=old)
        assert automation_check_workflow(workflow_id=workflow.pk) is None

    def test_the_window_holds_the_newest_audits_only(
        self, automation_workflow: Any, labelled: Any, settings: Any
    ) -> None:
        settings.LOOPGATE_STEP_DOWN_WINDOW = 50
        workflow = at_level(automation_workflow(), "full")
        labelled.simulate(workflow, 100, accuracy=0.4, reason="audit", level="full", seed=8)
        labelled.add(workflow, [("ok", 0.99, "ok")] * 50, reason="audit", level="full")
        window = audit_window(workflow=workflow)
        assert (window.successes, window.n, window.size) == (50, 50, 50)
        assert automation_check_workflow(workflow_id=workflow.pk) is None


class TestAlertsAndHysteresis:
    def test_fresh_evidence_resolves_the_alert_and_old_labels_do_not_count(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        workflow = automation_workflow(level="shadow")
        labelled.simulate(workflow, 300, accuracy=0.99, reason="shadow", seed=9)
        assert evidence_for_workflow(workflow=workflow).judgement.sufficient is True
        at_level(workflow, "partial")
        labelled.simulate(workflow, 80, accuracy=0.5, reason="audit", level="partial", seed=10)
        change = automation_check_workflow(workflow_id=workflow.pk)
        assert change is not None and change.to_level == "assistance"
        gate = evidence_for_workflow(workflow=workflow)
        assert gate.judgement.sufficient is False
        assert gate.evidence.n == 0 and gate.evidence.since is not None
        assert "fresh evidence only" in gate.judgement.reason

        labelled.simulate(workflow, 60, accuracy=1.0, reason="assistance", seed=11)
        automation_check_workflow(workflow_id=workflow.pk)
        assert Alert.objects.get().state == "firing", "60 labels are below min_evidence"
        labelled.simulate(workflow, 100, accuracy=1.0, reason="assistance", seed=12)
        assert automation_check_workflow(workflow_id=workflow.pk) is None
        alert = Alert.objects.get()
        assert alert.state == "resolved" and alert.resolved_at is not None
        assert alert.resolution.startswith("fresh evidence meets the target for partial")
        workflow.refresh_from_db()
        assert workflow.level == "assistance", "recovering evidence never raises by itself"

    def test_labels_needed_estimate_in_the_refusal(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        workflow = automation_workflow(level="shadow")
        labelled.add(workflow, [("ok", 0.99, "ok")] * 40, reason="shadow")
        gate = evidence_for_workflow(workflow=workflow).judgement
        assert gate.sufficient is False
        assert gate.labels_needed == 100
        assert "about 60 more labels would do" in gate.reason

    def test_no_serving_model_is_said_plainly(self, automation_workflow: Any) -> None:
        workflow = automation_workflow(serving=False)
        gate = evidence_for_workflow(workflow=workflow).judgement
        assert gate.sufficient is False and gate.reason == "no serving model is deployed"
        assert automation_check_workflow(workflow_id=at_level(workflow, "full").pk) is None


class TestDrift:
    def test_confidence_drift_raises_a_drift_alert_and_a_raise_resolves_it(
        self, automation_workflow: Any, labelled: Any, make_user: Any, settings: Any
    ) -> None:
        settings.LOOPGATE_DRIFT_WINDOW = 150
        settings.LOOPGATE_DRIFT_MIN_SAMPLES = 100
        workflow = automation_workflow(level="shadow")
        labelled.simulate(workflow, 150, accuracy=0.99, reason="shadow", seed=13)
        root = make_user("root", superuser=True)
        automation_update(
            workflow=workflow, actor=root, reason="pilot", changes={"level": "full"}, override=True
        )
        rng = np.random.default_rng(14)
        rows = [("ok", round(float(c), 6), "ok") for c in rng.uniform(0.4, 0.8, 150)]
        labelled.add(workflow, rows, reason="audit", level="full")
        assert automation_check_workflow(workflow_id=workflow.pk) is None
        assert not Alert.objects.exists(), "drift is checked by the periodic run"
        assert automation_check_all() == 0
        alert = Alert.objects.get(kind="drift")
        assert alert.state == "firing"
        assert (
            alert.data["p_value"] < 0.001
            and alert.data["recent_mean"] < alert.data["reference_mean"]
        )
        automation_check_workflow(workflow_id=workflow.pk, include_drift=True)
        assert Alert.objects.filter(kind="drift").count() == 1, "one drift alert at a time"
        automation_update(workflow=workflow, actor=root, reason="rest", changes={"level": "shadow"})
        automation_update(
            workflow=workflow, actor=root, reason="again", changes={"level": "full"}, override=True
        )
        alert.refresh_from_db()
        assert alert.state == "resolved"


class TestTasks:
    def test_check_all_covers_automated_workflows(
        self, automation_workflow: Any, labelled: Any
    ) -> None:
        bad = at_level(automation_workflow("bad"), "full")
        good = at_level(automation_workflow("good"), "partial")
        at_level(automation_workflow("quiet"), "shadow")
        labelled.simulate(bad, 60, accuracy=0.5, reason="audit", level="full", seed=15)
        labelled.simulate(good, 60, accuracy=1.0, reason="audit", level="partial", seed=16)
        assert automation_check_all() == 1
        assert tasks.automation_check_all.delay().get() == 0
        bad.refresh_from_db()
        assert bad.level == "partial"

    def test_the_hook_queues_the_check_on_commit(
        self,
        automation_workflow: Any,
        labelled: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        from django.db import transaction

        workflow = at_level(automation_workflow(), "full")
        labelled.simulate(workflow, 60, accuracy=0.5, reason="audit", level="full", seed=17)
        with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
            automation_check_queue(workflow_id=workflow.pk)
        assert len(callbacks) == 1
        workflow.refresh_from_db()
        assert workflow.level == "full", "nothing happens before the commit"
        callbacks[0]()
        workflow.refresh_from_db()
        assert workflow.level == "partial"

    def test_the_task_returns_the_step_down(self, automation_workflow: Any, labelled: Any) -> None:
        workflow = at_level(automation_workflow(), "full")
        labelled.simulate(workflow, 60, accuracy=0.5, reason="audit", level="full", seed=18)
        change_id = tasks.automation_check_workflow.delay(workflow.pk).get()
        assert LevelChange.objects.get(pk=change_id).automatic is True
        assert tasks.automation_check_workflow.delay(workflow.pk).get() is None
        assert tasks.automation_check_workflow.delay(10**9).get() is None


class TestAlertStates:
    def test_every_alert_state_has_a_row_and_resolved_is_final(self) -> None:
        from automation.models import AlertState
        from automation.services import ALERT_TRANSITIONS

        assert set(ALERT_TRANSITIONS) == set(AlertState.values)
        assert ALERT_TRANSITIONS[AlertState.RESOLVED] == frozenset()

    def test_resolving_moves_only_firing_alerts(self, make_workflow: Any) -> None:
        from automation.models import AlertState
        from automation.services import _alerts_resolve

        workflow = make_workflow("alerts", serving=False)
        firing = Alert.objects.create(workflow=workflow, kind="drift", message="m")
        done = Alert.objects.create(
            workflow=workflow, kind="drift", message="m", state="resolved", resolution="before"
        )
        assert _alerts_resolve(workflow=workflow, kind="drift", resolution="now") == 1
        firing.refresh_from_db()
        done.refresh_from_db()
        assert (firing.state, firing.resolution) == (AlertState.RESOLVED, "now")
        assert firing.resolved_at is not None
        assert (done.state, done.resolution) == (AlertState.RESOLVED, "before")
