"""Hostile bodies and numbers on the automation API: a 400 naming the problem, no change."""

from __future__ import annotations

from typing import Any

import pytest

from automation.models import LevelChange
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def url(tail: str = "") -> str:
    return f"/api/v1/workflows/line/automation/{tail}"


@pytest.fixture
def admin(automation_workflow: Any, make_user: Any, member: Any, client_for: Any) -> Any:
    workflow = automation_workflow("line", level="shadow")
    user = make_user("boss")
    member(user, workflow, admin=True)
    return client_for(user)


def assert_refused(response: Any, *words: str, status: int = 400) -> None:
    assert response.status_code == status, response.content
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message, message
    assert LevelChange.objects.count() == 0


@pytest.mark.parametrize("body", ["null", "1", "[]", '"text"', "true"])
@pytest.mark.parametrize(("method", "tail"), [("patch", ""), ("post", "threshold/")])
def test_body_that_is_not_an_object(admin: Any, method: str, tail: str, body: str) -> None:
    response = getattr(admin, method)(url(tail), body, content_type="application/json")
    assert_refused(response, "body: expected a JSON object")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("[" * 100_000, "body: nested deeper than 32 levels"),
        ('{"reason": "x", "min_evidence": NaN}', "NaN is not a JSON number"),
        ('{"reason": "x", "audit_rate": 1e400}', "out of range"),
        ('{"reason": "x\\u0000", "audit_rate": 0.1}', "NUL character"),
        ('{"reason": "\\udc00", "audit_rate": 0.1}', "lone surrogate"),
        ('{"reason": "x", "min_evidence": ' + "9" * 5000 + "}", "5000 digits"),
        ('{"reason": "x", "min_evidence": 1', "not valid JSON"),
    ],
)
def test_hostile_json_is_refused(admin: Any, body: str, words: str) -> None:
    response = admin.patch(url(), body, content_type="application/json")
    assert_refused(response, words)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (2**31, "min_evidence: Ensure this value is less than or equal to 2147483647"),
        (-1, "min_evidence: Ensure this value is greater than or equal to 0"),
        (2**63, "body: the integer 9223372036854775808 is out of range"),
    ],
)
def test_min_evidence_beyond_the_column(admin: Any, value: int, words: str) -> None:
    response = admin.patch(url(), {"reason": "x", "min_evidence": value}, format="json")
    assert_refused(response, words)
    assert Workflow.objects.get().min_evidence == 100


def test_min_evidence_at_the_column_limit_is_stored(admin: Any) -> None:
    response = admin.patch(url(), {"reason": "x", "min_evidence": 2**31 - 1}, format="json")
    assert response.status_code == 200, response.content
    assert Workflow.objects.get().min_evidence == 2**31 - 1


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("offset=" + "9" * 30, "offset: must be a whole number"),
        ("offset=99999999999999999999", "offset: must be between 0 and 2147483647"),
        ("offset=-1", "offset: must be between 0"),
        ("limit=0", "limit: must be between 1 and 500"),
        ("limit=abc", "limit: must be a whole number"),
        ("limit=%C2%B2", "limit: must be a whole number"),
    ],
)
def test_audit_log_page_bounds(admin: Any, query: str, words: str) -> None:
    assert_refused(admin.get(url("changes/") + "?" + query), words)


def test_audit_log_page_within_bounds(admin: Any) -> None:
    response = admin.get(url("changes/") + "?limit=500&offset=2147483647")
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


@pytest.mark.parametrize("query", ["target_error=nan", "confidence=inf", "target_error=1e400"])
def test_threshold_query_not_finite(admin: Any, query: str) -> None:
    response = admin.get(url("threshold/") + "?" + query)
    assert response.status_code == 400, response.content


def test_settings_page_refuses_min_evidence_beyond_the_column(
    admin: Any, make_user: Any, member: Any
) -> None:
    from tests.automation.test_automation_page import PAGE, logged_in, policy_post

    user = make_user("page-boss")
    workflow = Workflow.objects.get()
    member(user, workflow, admin=True)
    data = policy_post(workflow, min_evidence=2**40, reason="too many")
    response = logged_in(user).post(PAGE, data)
    assert response.status_code == 400
    assert "less than or equal to 2147483647" in response.content.decode()
    assert Workflow.objects.get().min_evidence == 100
    assert not LevelChange.objects.exists()
