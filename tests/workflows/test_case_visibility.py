"""What of a case each caller may see: one rule (``workflows.access``), tested as a table.

Every role, whether the suggestion was visible, review reason, gold, and the reader's own
verdict, against an oracle written independently of the rule. Then the renderers: a case
serializer given no visibility shows nothing the model said.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from kernel.errors import NotFound
from review.models import Assignment, ReviewTask, TaskKind, Verdict
from tests.conftest import case_row
from workflows.access import FULL, HIDDEN, CaseVisibility, access_case, case_visibility
from workflows.models import ActorType, Case, CaseEvent, Prediction
from workflows.serializers import CaseEventOutput, CaseOutput

pytestmark = pytest.mark.django_db

ROLES = (
    "superuser",
    "admin",
    "submitter",
    "submitter_reviewer",
    "admin_reviewer",
    "reviewer",
    "member_without_rights",
    "non_member",
    "anonymous",
)
SUGGESTION_VISIBLE = (True, False)  # False: shadow mode, or a level that hides it
REVIEW_REASONS = ("", "uncertain", "audit")
GOLD = (False, True)
OWN_VERDICT = (False, True)


def oracle(role: str, *, suggestion_visible: bool, reason: str, gold: bool) -> Any:
    """None when the case must not exist for the caller (404), else what they see."""
    if role in ("member_without_rights", "non_member", "anonymous"):
        return None
    if role != "reviewer":
        return FULL
    peeks_past_blind_review = gold or reason == "audit" or not suggestion_visible
    if peeks_past_blind_review:
        return CaseVisibility(human_decision=not gold)
    return CaseVisibility(
        predictions=True,
        model_decision=True,
        human_decision=True,
        routing=True,
        event_details=True,
        saliency=True,
        choose_model_version=False,
    )


def make_case(workflow: Any, **fields: Any) -> Case:
    case: Case = case_row(workflow, **fields)
    return case


def give_verdict(case: Case, reviewer: Any) -> None:
    task = ReviewTask.objects.create(
        case=case, workflow=case.workflow, kind=TaskKind.REVIEW, reason="uncertain"
    )
    assignment = Assignment.objects.create(
        task=task, reviewer=reviewer, expires_at=timezone.now() + timedelta(minutes=5)
    )
    Verdict.objects.create(
        task=task, case=case, assignment=assignment, reviewer=reviewer, label="ok"
    )


def user_in_role(role: str, workflow: Any, make_user: Any, member: Any) -> Any:
    if role == "anonymous":
        return AnonymousUser()
    user = make_user(role, superuser=role == "superuser")
    rights = {
        "admin": {"admin": True},
        "submitter": {"submit": True},
        "submitter_reviewer": {"submit": True, "review": True},
        "admin_reviewer": {"admin": True, "review": True},
        "reviewer": {"review": True},
        "member_without_rights": {},
    }
    if role in rights:
        member(user, workflow, **rights[role])
    return user


@pytest.mark.parametrize("role", ROLES)
def test_visibility_table(role: str, make_user: Any, make_workflow: Any, member: Any) -> None:
    workflow = make_workflow("table", level="assisted", serving=False)
    user = user_in_role(role, workflow, make_user, member)
    verdict_giver = user if getattr(user, "pk", None) else make_user("someone")
    checked = 0
    for suggestion_visible, reason, gold, own_verdict in itertools.product(
        SUGGESTION_VISIBLE, REVIEW_REASONS, GOLD, OWN_VERDICT
    ):
        case = make_case(
            workflow,
            suggestion_visible=suggestion_visible,
            review_reason=reason,
            is_gold=gold,
            routed_level="assisted" if suggestion_visible else "shadow",
        )
        if own_verdict:
            give_verdict(case, verdict_giver)
        expected = oracle(role, suggestion_visible=suggestion_visible, reason=reason, gold=gold)
        where = (
            f"{role} visible={suggestion_visible} reason={reason!r} gold={gold} own={own_verdict}"
        )
        if expected is None:
            with pytest.raises(NotFound):
                access_case(user, case.id)
            assert case_visibility(user, case) == HIDDEN, where
        else:
            _, visibility = access_case(user, case.id)
            assert visibility == expected, where
            assert case_visibility(user, case) == expected, where
        checked += 1
    assert checked == 2 * 3 * 2 * 2


def test_hidden_is_the_default() -> None:
    assert CaseVisibility() == HIDDEN
    assert not any(vars(HIDDEN).values())
    assert all(vars(FULL).values())


@pytest.fixture
def decided_case(make_workflow: Any, demo_model_version: Any) -> Case:
    workflow = make_workflow("render", level="full_auto", serving=False)
    case = make_case(
        workflow,
        status="decided",
        routed_level="full_auto",
        routed_threshold=0.9,
        review_reason="",
        suggestion_visible=True,
        decision_label="crack",
        decision_source="model",
        decision_confidence=0.97,
        decision_model_version=demo_model_version,
        decided_at=timezone.now(),
    )
    Prediction.objects.create(
        case=case,
        model_version=demo_model_version,
        role="serving",
        label="crack",
        confidence=0.97,
        scores={"crack": 0.97, "ok": 0.03},
        latency_ms=3.0,
    )
    CaseEvent.objects.create(
        case=case,
        kind="status",
        from_status="processing",
        to_status="decided",
        actor_type=ActorType.MODEL,
        reason="confidence 0.97 over 0.9",
        data={"label": "crack", "confidence": 0.97},
    )
    return case


MODEL_WORDS = ("crack", "0.97", "0.9", "full_auto")


def test_case_serializer_without_visibility_leaks_nothing(decided_case: Case) -> None:
    body = CaseOutput(decided_case).data
    assert body["predictions"] == []
    assert body["decision"] is None
    assert body["routing"] is None
    assert body["review_reason"] is None
    rendered = repr(dict(body))
    for word in MODEL_WORDS:
        assert word not in rendered, word


def test_case_serializer_with_a_context_but_no_visibility_leaks_nothing(
    decided_case: Case,
) -> None:
    body = CaseOutput(decided_case, context={"show_predictions": True}).data
    assert body["predictions"] == [] and body["decision"] is None and body["routing"] is None


def test_event_serializer_without_visibility_leaks_nothing(decided_case: Case) -> None:
    events = CaseEventOutput(decided_case.events.all(), many=True).data
    assert len(events) == 1
    assert events[0]["data"] == {}
    assert events[0]["reason"] == ""
    assert events[0]["to_status"] == "decided"


def test_case_serializer_with_full_visibility_shows_the_model(decided_case: Case) -> None:
    body = CaseOutput(decided_case, context={"visibility": FULL}).data
    assert body["decision"]["label"] == "crack"
    assert body["predictions"][0]["label"] == "crack"
    assert body["routing"]["level"] == "full_auto"
    events = CaseEventOutput(decided_case.events.all(), many=True, context={"visibility": FULL})
    assert events.data[0]["data"] == {"label": "crack", "confidence": 0.97}


def test_case_api_for_a_blind_reviewer_leaks_nothing(
    decided_case: Case, make_user: Any, member: Any, client_for: Any
) -> None:
    decided_case.suggestion_visible = False
    decided_case.routed_level = "shadow"
    decided_case.save(update_fields=["suggestion_visible", "routed_level"])
    reviewer = make_user("blind")
    member(reviewer, decided_case.workflow, review=True)
    client = client_for(reviewer)
    body = client.get(f"/api/v1/cases/{decided_case.id}/").json()
    assert body["predictions"] == [] and body["decision"] is None and body["routing"] is None
    events = client.get(f"/api/v1/cases/{decided_case.id}/events/").json()
    assert events[0]["data"] == {} and events[0]["reason"] == ""
    saliency = client.get(f"/api/v1/cases/{decided_case.id}/saliency/")
    assert saliency.status_code == 404
