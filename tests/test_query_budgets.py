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
# The repeated-image lookup (one query: exact hash, then a bounded near search,
# docs/decisions.md D56); savepoint, the case row and its event in one statement (a
# data-modifying WITH), release. The token, workflow and membership come from the access
# cache (D125); the unique constraint decides idempotency (no lookup first); a new case
# has no predictions to read. Outside the test's own transaction the savepoint is the
# transaction, so production sends 2. Processing is queued on commit and costs nothing
# here.
INGEST = 4
# A batch costs a fixed number of statements, whatever its size (D121): the claim (its
# SELECT, one UPDATE moving the cases to processing, one INSERT of their events; the plans
# are stored with that UPDATE, D134), one deployments read, the predictions' INSERT, the
# routing (a locking SELECT of the cases' status alone, D139; one UPDATE of the cases, one
# INSERT of their events, one INSERT of review tasks), the monitoring measurements' INSERT;
# and the savepoints of the three transactions (the test runs inside one). The worker's
# claim note is an UPDATE at most once a second (D139); the workflow's webhook
# subscriptions come from the cache (D128). No statement per case: a batch of 30
# costs at most BATCH_SIZE_SLACK more than one of 15, for the INSERT of audit tasks that
# only some batches draw. Production sends 10.
BATCH_PROCESSING = 16
BATCH_SIZE_SLACK = 1
# From the access cache (D125): token, workflow, membership. Savepoint; held lease; the
# claim: one statement picks the task (FOR UPDATE SKIP LOCKED: a pending deadline first,
# then the oldest, each walking its index in order, D102/D135) and loads it with its case
# for the payload and whether a lapsed lease must be ended; the lease's INSERT … ON
# CONFLICT DO NOTHING (the one-active-lease index decides, no savepoint around it, D129);
# release. Outside the test's own transaction the savepoint is the transaction, so
# production sends 3.
REVIEW_NEXT = 5
# Savepoint; the task and its case locked in one statement (FOR UPDATE OF both, task
# first; its access checked on the locked row, workflow and membership cached); the
# reviewer's lease with the task's standing verdicts (one statement, read under the
# lock; it also draws the verdict's key, D147); what it settles joined in one
# data-modifying WITH with the verdict's INSERT (the verdict, the lease completed, the
# task closed and its event, the case's decision with its status move, and its event;
# D140); release. The workflow's webhook subscriptions, for the outbox, come from the
# cache (D128). Production sends 3.
VERDICT = 5
# The token, workflow and membership from the access cache (D125); the page: one keyset
# query of limit + 1 cases with their deciding version. The same for any page size.
CASE_LIST = 1


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


def waiting_cases(workflow: Any, count: int, *, seed: int = 0) -> list[str]:
    from processing.services import case_create

    return [
        str(
            case_create(
                workflow=workflow,
                image_data=image_bytes("ok", seed=seed + k),
                external_id=None,
                metadata={},
                submitted_by=None,
            ).case.id
        )
        for k in range(count)
    ]


@pytest.fixture(autouse=True)
def _claim_note_interval_long(monkeypatch: Any) -> None:
    """The worker notes a claim at most once a second (D139); a slow machine must not
    see the second pass between ``worker_warm`` and the batch measured."""
    monkeypatch.setattr("processing.services.CLAIM_RECORD_INTERVAL_SECONDS", 3600.0)


def worker_warm(workflow: Any) -> None:
    """Make the next batch like every later one: the worker has noted a claim within the
    interval (D139), and the workflow's webhook subscriptions are cached (D128)."""
    from processing.services import cases_process

    assert cases_process(case_ids=waiting_cases(workflow, 1, seed=500)) == 1


def test_batch_processing(make_workflow: Any, django_assert_num_queries: Any) -> None:
    from processing.services import cases_process

    workflow = make_workflow("batch", level="shadow")
    worker_warm(workflow)
    case_ids = waiting_cases(workflow, BATCH)
    with django_assert_num_queries(BATCH_PROCESSING):
        assert cases_process(case_ids=case_ids) == BATCH


@pytest.mark.parametrize("level", ["shadow", "full"])
def test_a_drain_costs_per_batch_not_per_case(
    make_workflow: Any, settings: Any, level: str
) -> None:
    """A workflow's drain of 15 and of 30 waiting cases, in one batch each: the same count
    of statements (routing, events, tasks and predictions are bulk statements)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from processing.services import workflow_drain

    settings.LOOPGATE_INFERENCE_BATCH_SIZE = 64
    counts = {}
    for size in (15, 30):
        workflow = make_workflow(f"drain-{level}-{size}", level=level)
        worker_warm(workflow)
        waiting_cases(workflow, size, seed=size)
        with CaptureQueriesContext(connection) as queries:
            assert workflow_drain(workflow_id=workflow.id) == size
        counts[size] = len(queries)
    assert counts[30] - counts[15] <= BATCH_SIZE_SLACK, counts
    assert counts[15] <= BATCH_PROCESSING, counts


@pytest.fixture
def review_setup(client_for: Any, django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    workflow = review_factories.workflow_create("inspect")
    reviewer = review_factories.reviewer_create("rita", workflow)
    for _ in range(4):
        review_factories.case_in_review(workflow)
    client = client_for(reviewer)
    # Warm the caches (the token's last-used stamp, the access cache) with one claim and
    # verdict: the budgets are for a request like every later one. Their transactions
    # commit as in production (what they read is cached on commit, and the outbox's
    # per-transaction memo is gone), so the measured request reads what it would there.
    with django_capture_on_commit_callbacks(execute=True):
        task = client.post("/api/v1/workflows/inspect/review/next/", format="json").json()
        client.post(f"/api/v1/review-tasks/{task['id']}/verdict/", {"label": "ok"}, format="json")
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
