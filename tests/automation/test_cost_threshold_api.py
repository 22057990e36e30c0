"""The cost-aware threshold through the API and the page: the cheapest threshold under
the same guarantee, the savings against human-only, and applying it as an audited change."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from automation.models import LevelChange

pytestmark = pytest.mark.django_db


def url(tail: str = "") -> str:
    return f"/api/v1/workflows/line/automation/{tail}"


@pytest.fixture
def costed(automation_workflow: Any, labelled: Any, make_user: Any, member: Any, client_for: Any):
    workflow = automation_workflow("line", level="partial", confidence_threshold=0.999)
    labelled.simulate(workflow, 1500, accuracy=0.95, reason="shadow", seed=21)
    admin = make_user("boss")
    member(admin, workflow, admin=True)
    return {"workflow": workflow, "client": client_for(admin), "user": admin}


def test_the_report_shows_the_cheapest_threshold_and_the_savings(costed: dict) -> None:
    query = "threshold/?target_error=0.05&review_cost=2&error_cost=40&class_error_costs=crack:200"
    body = costed["client"].get(url(query)).json()
    cost = body["cost"]
    assert cost["threshold"] is not None
    assert cost["threshold"] >= body["recommendation"]["threshold"], "same guarantee"
    assert cost["human_only_cost_per_case"] == 2.0
    assert cost["savings_per_case"] == pytest.approx(2.0 - cost["cost_per_case"])
    assert cost["savings_per_1000_cases"] == pytest.approx(1000 * cost["savings_per_case"])
    assert cost["class_error_costs"] == {"crack": 200.0}
    assert body["per_class"][0]["labels_needed"] >= 0
    plain = costed["client"].get(url("threshold/?target_error=0.05")).json()
    assert plain["cost"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("review_cost=2", "error_cost"),
        ("error_cost=2", "review_cost"),
        ("review_cost=-1&error_cost=2", "review_cost"),
        ("review_cost=1&error_cost=2&class_error_costs=dent:3", "class_error_costs"),
        ("review_cost=1&error_cost=2&class_error_costs=crack:x", "class_error_costs"),
    ],
)
def test_bad_costs_are_a_clear_400(costed: dict, query: str, field: str) -> None:
    response = costed["client"].get(url(f"threshold/?{query}"))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field


def test_applying_the_cheapest_threshold_is_an_audited_change(costed: dict) -> None:
    client = costed["client"]
    refused = client.post(url("threshold/"), {"reason": "cost", "objective": "cost"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "objective"
    report = client.get(url("threshold/?target_error=0.1&review_cost=2&error_cost=40")).json()
    response = client.post(
        url("threshold/"),
        {
            "reason": "cheapest at 10% risk",
            "objective": "cost",
            "target_error": 0.1,
            "review_cost": 2,
            "error_cost": 40,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    change = LevelChange.objects.get()
    assert change.after["confidence_threshold"] == report["cost"]["threshold"]
    recorded = change.evidence["threshold_recommendation"]
    assert recorded["objective"] == "cost" and recorded["cost"]["review_cost"] == 2.0


def test_the_page_shows_the_savings(costed: dict) -> None:
    client = Client()
    client.force_login(costed["user"])
    page = client.get(
        "/workflows/line/automation/?target_error=0.05&confidence=0.95&review_cost=2&error_cost=40"
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="cost-threshold"' in html and "saved per 1,000 cases" in html
