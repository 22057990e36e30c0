"""How many SQL statements the hot paths cost, pinned so that an N+1 shows up as a failure.

Each budget is today's measured count (docs/benchmarks.md, "Query budgets"). A change
that needs more statements must say why and raise the budget with it; a change that
needs fewer should lower it.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.conftest import image_bytes
from tests.review import factories as review_factories

pytestmark = pytest.mark.django_db

BATCH = 16

# Measured 2026-11-30 on PostgreSQL; the statements are listed in docs/benchmarks.md.
# Token; workflow and membership (access_workflow); duplicate external_id check; savepoint,
# case row, its event, release; the visibility rule's membership read; the predictions
# read of the output (none yet); the repeated-image lookup (one query: exact hash, then a
# bounded near search, docs/decisions.md D56). Processing is queued on commit and costs
# nothing here.
INGEST = 11
# 20 for the batch (claim with its events, worker heartbeat, one deployments read, the
# plans, one predictions read and one bulk insert, savepoints) + 3 per case routed to
# review (status UPDATE, event INSERT, task INSERT): 20 + 3 x 16. The per-case routing
# statements are the next thing to batch. +1: the workflow's webhook subscriptions, read
# once per transaction (integrations.services._subscriptions), for the outbox. +1: the
# monitoring measurements of the whole batch (image statistics, model output, embedding,
# stage times), one bulk INSERT in the routing transaction
# (monitoring.services.measurements_store).
BATCH_PROCESSING = 70
# Token and its last-used stamp; workflow, membership (access_workflow) and membership
# again (access_review in the service); held lease, claimable task (a pending deadline
# first, then the oldest: two indexed queries, D102), adjudication check, lapsed-lease
# update, lease insert with savepoints; the payload's task read.
REVIEW_NEXT = 16
# Token; task; membership (access_review); task and case locks; lease; standing-verdict
# check; verdict insert; lease completed; verdicts read; the case's decision, its status
# move and event; the task closed, and its event (ReviewTaskEvent); savepoints; the
# workflow's webhook subscriptions (read once per transaction, for the outbox).
VERDICT = 18
# Token; workflow (access_workflow) and membership (its right), membership again (what the
# reader may see, workflows.access.access_case_list); the page: one keyset query of
# limit + 1 cases with their deciding version. The same for any page size.
CASE_LIST = 5


def upload(data: bytes) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = "part.png"
    return buffer


@pytest.fixture
def submitter_client(make_user: Any, make_workflow: Any, member: Any, client_for: Any) -> Any:
    workflow = make_workflow("line", level="shadow")
    user = make_user("camera")
    member(user, workflow, submit=True)
    client = client_for(user)
    # The first request of a process warms caches (content types, the token's user);
    # the budget is for a request like every later one.
    client.post(
        "/api/v1/workflows/line/cases/",
        {"image": upload(image_bytes("ok", seed=99))},
        format="multipart",
    )
    return client


def test_ingest_at_shadow_level(submitter_client: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(INGEST):
        response = submitter_client.post(
            "/api/v1/workflows/line/cases/",
            {"image": upload(image_bytes("scratch", seed=1)), "external_id": "part-1"},
            format="multipart",
        )
    assert response.status_code == 201, response.content


def test_batch_processing(make_workflow: Any, django_assert_num_queries: Any) -> None:
    from processing.services import case_create, cases_process

    workflow = make_workflow("batch", level="shadow")
    case_ids = [
        str(
            case_create(
                workflow=workflow,
                image_data=image_bytes("ok", seed=k),
                external_id=None,
                metadata={},
                submitted_by=None,
            ).case.id
        )
        for k in range(BATCH)
    ]
    with django_assert_num_queries(BATCH_PROCESSING):
        assert cases_process(case_ids=case_ids) == BATCH


@pytest.fixture
def review_setup(client_for: Any) -> dict[str, Any]:
    workflow = review_factories.workflow_create("inspect")
    reviewer = review_factories.reviewer_create("rita", workflow)
    for _ in range(3):
        review_factories.case_in_review(workflow)
    client = client_for(reviewer)
    return {"workflow": workflow, "client": client}


def test_review_next(review_setup: dict[str, Any], django_assert_num_queries: Any) -> None:
    client = review_setup["client"]
    with django_assert_num_queries(REVIEW_NEXT):
        response = client.post("/api/v1/workflows/inspect/review/next/", format="json")
    assert response.status_code == 200, response.content


def test_verdict(review_setup: dict[str, Any], django_assert_num_queries: Any) -> None:
    client = review_setup["client"]
    task = client.post("/api/v1/workflows/inspect/review/next/", format="json").json()
    with django_assert_num_queries(VERDICT):
        response = client.post(
            f"/api/v1/review-tasks/{task['id']}/verdict/", {"label": "crack"}, format="json"
        )
    assert response.status_code in (200, 201), response.content


def test_case_list_page(
    make_user: Any, make_workflow: Any, member: Any, client_for: Any, django_assert_num_queries: Any
) -> None:
    workflow = make_workflow("line", level="human_only", serving=False)
    admin = make_user("ada")
    member(admin, workflow, review=True, admin=True)
    review_factories.cases_in_review_bulk(workflow, 60)
    client = client_for(admin)
    client.get("/api/v1/workflows/line/cases/", {"limit": 1})  # warm caches
    with django_assert_num_queries(CASE_LIST):
        response = client.get("/api/v1/workflows/line/cases/", {"limit": 50})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 50
