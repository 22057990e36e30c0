"""The automation page through Django's test client: login, permissions, CSRF, forms."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from automation.models import LevelChange

pytestmark = pytest.mark.django_db

PAGE = "/workflows/line/automation/"


@pytest.fixture
def page_setup(automation_workflow: Any, make_user: Any, member: Any, labelled: Any) -> dict:
    workflow = automation_workflow("line", level="shadow")
    labelled.simulate(workflow, 400, accuracy=0.96, reason="shadow", seed=1)
    admin = make_user("boss")
    member(admin, workflow, admin=True)
    reviewer = make_user("rita")
    member(reviewer, workflow, review=True)
    outsider = make_user("olga")
    return {"workflow": workflow, "admin": admin, "reviewer": reviewer, "outsider": outsider}


def logged_in(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def policy_post(workflow: Any, **changes: Any) -> dict[str, Any]:
    """The policy form as the page submits it, with ``changes`` applied; a change of
    level comes confirmed, as the page's dialog (or its checkbox) sends it."""
    data: dict[str, Any] = {
        "action": "policy",
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


def test_login_is_required(page_setup: dict) -> None:
    response = Client().get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_reviewers_get_403_and_outsiders_404(page_setup: dict) -> None:
    assert logged_in(page_setup["reviewer"]).get(PAGE).status_code == 403
    assert logged_in(page_setup["outsider"]).get(PAGE).status_code == 404
    assert logged_in(page_setup["reviewer"]).post(PAGE, {"action": "policy"}).status_code == 403


def test_the_page_shows_policy_evidence_curve_and_log(page_setup: dict) -> None:
    response = logged_in(page_setup["admin"]).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        "Evidence gate",
        "Automatic step-down",
        "Evidence per model version",
        "fake-cnn:v1",
        "Recommended threshold",
        "<svg",
        "Change the policy",
        "Audit log",
        'name="csrfmiddlewaretoken"',
        'aria-current="step"',
    ):
        assert text in html, text
    assert 'name="override"' not in html, "only superusers see the override"


def test_the_index_lists_administered_workflows(page_setup: dict) -> None:
    html = logged_in(page_setup["admin"]).get("/automation/").content.decode()
    assert PAGE in html
    assert PAGE not in logged_in(page_setup["reviewer"]).get("/automation/").content.decode()


def test_csrf_is_enforced(page_setup: dict) -> None:
    client = logged_in(page_setup["admin"], csrf=True)
    response = client.post(PAGE, policy_post(page_setup["workflow"], audit_rate=0.3, reason="x"))
    assert response.status_code == 403
    assert not LevelChange.objects.exists()


def test_a_change_needs_a_reason(page_setup: dict) -> None:
    response = logged_in(page_setup["admin"]).post(
        PAGE, policy_post(page_setup["workflow"], audit_rate=0.3)
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not LevelChange.objects.exists()


def test_saving_the_policy_with_class_rules(page_setup: dict) -> None:
    workflow = page_setup["workflow"]
    data = policy_post(
        workflow,
        audit_rate=0.2,
        reason="never auto-decide cracks",
        class_mode__crack="never",
        class_mode__ok="own",
        class_threshold__ok="0.85",
    )
    response = logged_in(page_setup["admin"]).post(PAGE, data, follow=True)
    assert response.status_code == 200
    assert "Saved: audit_rate, class_thresholds changed." in response.content.decode()
    change = LevelChange.objects.get()
    assert change.actor == page_setup["admin"]
    assert change.after["class_thresholds"] == {"crack": None, "ok": 0.85}
    assert "never auto-decide cracks" in response.content.decode()


def test_a_level_change_must_be_confirmed(page_setup: dict) -> None:
    workflow = page_setup["workflow"]
    client = logged_in(page_setup["admin"])
    data = policy_post(workflow, level="assistance", reason="go")
    del data["confirm_level"]
    response = client.post(PAGE, data)
    assert response.status_code == 400
    assert "Confirm the change of level from Shadow to AI assistance" in response.content.decode()
    workflow.refresh_from_db()
    assert workflow.level == "shadow" and not LevelChange.objects.exists()
    unchanged_level = client.post(PAGE, policy_post(workflow, audit_rate=0.3, reason="more"))
    assert unchanged_level.status_code == 302, "no confirmation when the level stays"
    confirmed = client.post(PAGE, policy_post(workflow, level="assistance", reason="go"))
    assert confirmed.status_code == 302
    workflow.refresh_from_db()
    assert workflow.level == "assistance"


def test_the_threshold_inputs_accept_what_the_server_accepts(page_setup: dict) -> None:
    """The browser refuses a value off the input's step grid (from its min): the grid
    must not be narrower than the server's bounds, or the form cannot be submitted."""
    from automation.forms import ThresholdForm

    for name, field in ThresholdForm().fields.items():
        attrs = field.widget.attrs
        assert attrs["step"] == "any", name
        assert float(attrs["min"]) == field.min_value and float(attrs["max"]) == field.max_value
    html = logged_in(page_setup["admin"]).get(PAGE).content.decode()
    assert 'step="0.001"' not in html.split('aria-label="Recalculate the recommendation"')[1][:2000]


def test_own_threshold_needs_a_number(page_setup: dict) -> None:
    data = policy_post(page_setup["workflow"], reason="r", class_mode__ok="own")
    response = logged_in(page_setup["admin"]).post(PAGE, data)
    assert response.status_code == 400
    assert "Give a threshold for ok" in response.content.decode()


def test_refusal_says_what_is_missing_then_the_raise_goes_through(page_setup: dict) -> None:
    workflow = page_setup["workflow"]
    workflow.min_evidence = 1000
    workflow.save(update_fields=["min_evidence"])
    client = logged_in(page_setup["admin"])
    refused = client.post(PAGE, policy_post(workflow, level="partial", reason="go"))
    assert refused.status_code == 409
    assert "only 400 human-labelled cases, 1000 needed" in refused.content.decode()
    loosened_in_the_same_post = client.post(
        PAGE, policy_post(workflow, level="partial", min_evidence=200, reason="go")
    )
    assert loosened_in_the_same_post.status_code == 409, "judged against the stricter target"
    assert "only 400 human-labelled cases, 1000 needed" in (
        loosened_in_the_same_post.content.decode()
    )
    assert not LevelChange.objects.exists()
    lowered = client.post(
        PAGE, policy_post(workflow, min_evidence=200, reason="1000 was a typo"), follow=True
    )
    assert lowered.status_code == 200, "below automation, a target may be lowered (logged)"
    workflow.refresh_from_db()
    allowed = client.post(PAGE, policy_post(workflow, level="partial", reason="go"), follow=True)
    assert allowed.status_code == 200
    workflow.refresh_from_db()
    assert workflow.level == "partial"
    assert [c.reason for c in LevelChange.objects.order_by("id")] == ["1000 was a typo", "go"]


def test_the_bypass_form_post_is_refused(page_setup: dict) -> None:
    """Raise to full while loosening every target in the same form post."""
    workflow = page_setup["workflow"]
    data = policy_post(
        workflow, level="full", min_evidence=0, target_accuracy=0, audit_rate=0, reason="x"
    )
    response = logged_in(page_setup["admin"]).post(PAGE, data)
    assert response.status_code == 409
    html = response.content.decode()
    assert "cannot raise the level to full" in html
    for text in (
        "target_accuracy 0 is below the floor 0.8 for full",
        "min_evidence 0 is below the floor 50 for full",
        "audit_rate 0 is below the floor 0.01 for full",
    ):
        assert text in html, text
    workflow.refresh_from_db()
    assert workflow.level == "shadow" and workflow.min_evidence == 100
    assert not LevelChange.objects.exists()


def test_loosening_at_partial_from_the_page_is_judged(page_setup: dict, labelled: Any) -> None:
    workflow = page_setup["workflow"]
    workflow.level = "partial"
    workflow.target_error = 0.01
    workflow.save(update_fields=["level", "target_error"])
    response = logged_in(page_setup["admin"]).post(
        PAGE, policy_post(workflow, confidence_threshold=0.5, reason="automate more")
    )
    assert response.status_code == 409
    assert "cannot loosen confidence_threshold at partial" in response.content.decode()
    assert not LevelChange.objects.exists()


def test_a_superuser_overrides_from_the_page(page_setup: dict, make_user: Any) -> None:
    workflow = page_setup["workflow"]
    root = make_user("root", superuser=True)
    data = policy_post(workflow, level="full", audit_rate=0, reason="pilot", override="on")
    response = logged_in(root).post(PAGE, data, follow=True)
    assert response.status_code == 200
    assert "The evidence gate was overridden" in response.content.decode()
    change = LevelChange.objects.get()
    assert change.overridden and change.actor == root
    assert "audit_rate 0 is below the floor 0.01" in change.evidence["override"]["message"]


def test_applying_the_recommended_threshold(page_setup: dict) -> None:
    client = logged_in(page_setup["admin"])
    query = "?target_error=0.05&confidence=0.95"
    html = client.get(PAGE + query).content.decode()
    assert "Apply threshold" in html
    response = client.post(
        PAGE + query,
        {
            "action": "apply-threshold",
            "apply-target_error": "0.05",
            "apply-confidence": "0.95",
            "apply-reason": "calibrated",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith(query)
    change = LevelChange.objects.get()
    assert change.evidence["threshold_recommendation"]["target_error"] == 0.05
    assert change.after["confidence_threshold"] != 0.9


def test_the_index_leaves_out_archived_workflows(page_setup: dict) -> None:
    workflow = page_setup["workflow"]
    workflow.archived_at = timezone.now()
    workflow.save(update_fields=["archived_at"])
    html = logged_in(page_setup["admin"]).get("/automation/").content.decode()
    assert PAGE not in html
    # The page itself stays reachable for its admin (to read its history).
    assert logged_in(page_setup["admin"]).get(PAGE).status_code == 200
