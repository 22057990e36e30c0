"""The workflow's Django admin: the policy is read-only on the change form and changes on
its own admin page through the same gated, logged service as the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from automation.models import LevelChange
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(make_user: Any) -> Client:
    client = Client()
    client.force_login(make_user("root", superuser=True))
    return client


@pytest.fixture
def workflow(make_workflow: Any) -> Workflow:
    return make_workflow(
        "line", level="shadow", audit_rate=0.1, target_accuracy=0.9, min_evidence=100
    )


def inline_management(prefix: str = "memberships") -> dict[str, Any]:
    return {
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def policy_post(workflow: Workflow, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "level": workflow.level,
        "confidence_threshold": workflow.confidence_threshold,
        "audit_rate": workflow.audit_rate,
        "target_accuracy": workflow.target_accuracy,
        "target_error": workflow.target_error,
        "min_evidence": workflow.min_evidence,
        "reason": "",
    }
    for label in workflow.labels:
        data[f"class_mode__{label}"] = "global"
    data.update(changes)
    if data["level"] != workflow.level:
        data.setdefault("confirm_level", "on")
    return data


def test_the_change_form_shows_the_policy_read_only_and_ignores_it(
    root: Client, workflow: Workflow
) -> None:
    change = reverse("admin:workflows_workflow_change", args=[workflow.pk])
    html = root.get(change).content.decode()
    for name in ("level", "audit_rate", "target_accuracy", "min_evidence", "evidence_confidence"):
        assert f'name="{name}"' not in html, name
    assert reverse("admin:workflows_workflow_automation", args=[workflow.pk]) in html
    response = root.post(
        change,
        {
            "slug": "line",
            "name": "Renamed",
            "description": "",
            "labels": '["ok", "scratch", "crack", "stain"]',
            "consensus_required": 1,
            "gold_rate": 0,
            "review_lease_seconds": 300,
            "skip_delay_seconds": 60,
            "max_skips": 3,
            "hidden_suggestion_rate": 0,
            "instructions": "",
            "label_settings": "{}",
            "level": "full",
            "audit_rate": 0,
            "min_evidence": 0,
            "target_accuracy": 0,
            "evidence_confidence": 0.01,
            **inline_management(),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    workflow.refresh_from_db()
    assert workflow.name == "Renamed"
    assert (workflow.level, workflow.audit_rate, workflow.min_evidence) == ("shadow", 0.1, 100)
    assert (workflow.target_accuracy, workflow.evidence_confidence) == (0.9, 0.95)
    assert not LevelChange.objects.exists()


def test_a_workflow_added_in_the_admin_starts_at_human_only(root: Client) -> None:
    response = root.post(
        reverse("admin:workflows_workflow_add"),
        {
            "slug": "new-line",
            "name": "New line",
            "description": "",
            "labels": '["ok", "bad"]',
            "consensus_required": 1,
            "gold_rate": 0,
            "review_lease_seconds": 300,
            "skip_delay_seconds": 60,
            "max_skips": 3,
            "hidden_suggestion_rate": 0,
            "instructions": "",
            "label_settings": "{}",
            "level": "full",
            **inline_management(),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Workflow.objects.get(slug="new-line").level == "human_only"


def test_the_policy_page_refuses_what_the_gate_refuses(root: Client, workflow: Workflow) -> None:
    page = reverse("admin:workflows_workflow_automation", args=[workflow.pk])
    assert root.get(page).status_code == 200
    bypass = policy_post(
        workflow, level="full", min_evidence=0, target_accuracy=0, audit_rate=0, reason="x"
    )
    response = root.post(page, bypass)
    assert response.status_code == 409
    html = response.content.decode()
    assert "cannot raise the level to full" in html
    assert "only 0 human-labelled cases, 100 needed" in html
    workflow.refresh_from_db()
    assert workflow.level == "shadow"
    assert not LevelChange.objects.exists()


def test_a_change_on_the_policy_page_goes_through_the_service_and_is_logged(
    root: Client, workflow: Workflow
) -> None:
    page = reverse("admin:workflows_workflow_automation", args=[workflow.pk])
    response = root.post(page, policy_post(workflow, audit_rate=0.3, reason="audit more"))
    assert response.status_code == 302
    change = LevelChange.objects.get()
    assert change.actor.username == "root" and change.reason == "audit more"
    assert (change.before["audit_rate"], change.after["audit_rate"]) == (0.1, 0.3)
    assert not change.overridden


def test_a_superusers_override_on_the_policy_page_is_logged(
    root: Client, workflow: Workflow
) -> None:
    page = reverse("admin:workflows_workflow_automation", args=[workflow.pk])
    bypass = policy_post(workflow, level="full", audit_rate=0, reason="pilot", override="on")
    response = root.post(page, bypass, follow=True)
    assert response.status_code == 200
    assert "The evidence gate was overridden" in response.content.decode()
    change = LevelChange.objects.get()
    assert change.overridden and change.actor.username == "root"
    assert change.to_level == "full"


def test_the_audit_log_is_read_only_in_the_admin(root: Client, workflow: Workflow) -> None:
    page = reverse("admin:workflows_workflow_automation", args=[workflow.pk])
    root.post(page, policy_post(workflow, audit_rate=0.3, reason="audit more"))
    change = LevelChange.objects.get()
    delete = reverse("admin:automation_levelchange_delete", args=[change.pk])
    assert root.post(delete, {"post": "yes"}).status_code == 403
    assert LevelChange.objects.filter(pk=change.pk).exists()


def test_the_admin_form_goes_through_the_workspace_services(root: Client) -> None:
    """The same rules as the API and the settings pages: refused with the same message,
    nothing stored; a workflow made here has its creator as admin."""
    add = reverse("admin:workflows_workflow_add")
    base = {
        "slug": "weld",
        "name": "Weld",
        "description": "",
        "consensus_required": 1,
        "gold_rate": 0,
        "review_lease_seconds": 300,
        "skip_delay_seconds": 60,
        "max_skips": 3,
        "hidden_suggestion_rate": 0,
        "instructions": "",
        "label_settings": "{}",
        **inline_management(),
    }
    refused = root.post(add, {**base, "labels": '["ok", "OK"]'})
    assert refused.status_code == 200 and "given twice" in refused.content.decode()
    refused = root.post(
        add, {**base, "labels": '["ok", "bad"]', "label_settings": '{"ok": {"key": "s"}}'}
    )
    assert "review screen key" in refused.content.decode()
    assert not Workflow.objects.filter(slug="weld").exists()
    done = root.post(add, {**base, "labels": '["ok", "bad"]'})
    assert done.status_code == 302
    workflow = Workflow.objects.get(slug="weld")
    assert workflow.memberships.get().can_admin
