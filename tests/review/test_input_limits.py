"""Hostile input on the review API: a 400 (or 404 for ids that cannot exist), never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from review.models import Assignment, Verdict

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client_for: Any, reviewer: Any) -> Any:
    return client_for(reviewer)


def message_of(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.content
    return response.json()["error"]["message"]


def test_next_with_a_body_nested_100000_deep(api: Any, workflow: Any, queue_case: Any) -> None:
    queue_case(workflow)
    response = api.post(
        f"/api/v1/workflows/{workflow.slug}/review/next/",
        "[" * 100_000 + "]" * 100_000,
        content_type="application/json",
    )
    assert message_of(response) == "body: nested deeper than 32 levels"
    assert Assignment.objects.count() == 0


@pytest.mark.parametrize("body", ["null", "1", "[1]"])
def test_next_with_a_body_that_is_not_an_object(
    api: Any, workflow: Any, queue_case: Any, body: str
) -> None:
    queue_case(workflow)
    response = api.post(
        f"/api/v1/workflows/{workflow.slug}/review/next/", body, content_type="application/json"
    )
    assert message_of(response).startswith("body: expected a JSON object")
    assert Assignment.objects.count() == 0


@pytest.mark.parametrize("after", [0, -5, 2**63])
def test_next_after_beyond_an_id(api: Any, workflow: Any, after: int) -> None:
    response = api.post(
        f"/api/v1/workflows/{workflow.slug}/review/next/", {"after": after}, format="json"
    )
    message = message_of(response)
    assert "after" in message or "out of range" in message


@pytest.mark.parametrize(
    ("limit", "words"),
    [
        ("9" * 30, "limit: must be a whole number"),
        ("99999999999", "limit: must be between 1 and 100"),
        ("0", "limit: must be between 1 and 100"),
        ("abc", "limit: must be a whole number"),
        ("%C2%B2", "limit: must be a whole number"),
    ],
)
def test_recent_verdicts_limit(api: Any, workflow: Any, limit: str, words: str) -> None:
    response = api.get(f"/api/v1/workflows/{workflow.slug}/review/verdicts/?limit={limit}")
    assert message_of(response) == words


@pytest.mark.parametrize("task_id", ["99999999999999999999999", str(2**63), str(2**63 - 1)])
def test_task_ids_beyond_the_column_are_not_found(api: Any, task_id: str) -> None:
    response = api.post(f"/api/v1/review-tasks/{task_id}/verdict/", {"label": "ok"}, format="json")
    assert response.status_code == 404, response.content
    response = api.post(f"/api/v1/verdicts/{task_id}/undo/")
    assert response.status_code == 404, response.content
    assert Verdict.objects.count() == 0


def test_verdict_with_nul_in_the_comment(api: Any, workflow: Any, queue_case: Any) -> None:
    queue_case(workflow)
    task = api.post(f"/api/v1/workflows/{workflow.slug}/review/next/", format="json").json()
    response = api.post(
        f"/api/v1/review-tasks/{task['id']}/verdict/",
        '{"label": "ok", "comment": "a\\u0000b"}',
        content_type="application/json",
    )
    assert "NUL character" in message_of(response)
    assert Verdict.objects.count() == 0
