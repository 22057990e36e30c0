"""/stats/ says which labels its accuracy comes from, and by default counts only the
unbiased ones (shadow, assistance, audits), never the hard cases partial sends to people."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def partial_stats(
    automation_workflow: Any, labelled: Any, make_user: Any, member: Any, client_for: Any
) -> Any:
    workflow = automation_workflow(level="partial")
    # 90 audits of automatic decisions, 87 right; 30 low-confidence reviews, 15 right
    labelled.add(workflow, [("ok", 0.99, "ok")] * 87 + [("ok", 0.99, "crack")] * 3, reason="audit")
    labelled.add(
        workflow,
        [("ok", 0.6, "ok")] * 15 + [("ok", 0.6, "crack")] * 15,
        reason="low_confidence",
    )
    user = make_user("viewer")
    member(user, workflow, admin=True)
    client = client_for(user)
    return lambda query="": client.get(f"/api/v1/workflows/line/stats/{query}")


def test_the_default_is_unbiased_and_says_so(partial_stats: Any) -> None:
    body = partial_stats().json()
    assert body["labels"]["which"] == "unbiased"
    assert body["labels"]["review_reasons"] == ["assistance", "audit", "shadow"]
    overall = body["accuracy"][0]["overall"]
    assert (overall["successes"], overall["n"]) == (87, 90)


def test_all_verdicts_are_available_and_labelled_biased(partial_stats: Any) -> None:
    body = partial_stats("?labels=all").json()
    assert body["labels"]["which"] == "all"
    assert "biased" in body["labels"]["note"]
    overall = body["accuracy"][0]["overall"]
    assert (overall["successes"], overall["n"]) == (87 + 15, 120)


def test_an_unknown_label_choice_is_a_clear_400(partial_stats: Any) -> None:
    response = partial_stats("?labels=some")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "labels" and "unbiased" in error["message"]
