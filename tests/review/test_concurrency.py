"""Twenty reviewers on one queue, for real, on PostgreSQL: no overlap, nothing lost."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict

import pytest
from django.db import connection

from inference.synthetic import DEMO_LABELS
from review import errors, services
from review.models import Assignment, ReviewTask, TaskStatus, Verdict
from tests.conftest import require_postgres
from tests.review import factories
from workflows.models import Case, CaseStatus

REVIEWERS = 20
WALKERS = 3  # reviewers who claim one case and walk away without a verdict
CASES = 500
CONSENSUS = 2
LEASE_SECONDS = 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_reviewers_drain_the_queue_without_overlap_or_loss(settings):
    require_postgres()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    workflow = factories.workflow_create(
        "busy-line", consensus_required=CONSENSUS, review_lease_seconds=LEASE_SECONDS
    )
    reviewers = [factories.reviewer_create(f"reviewer-{i:02d}", workflow) for i in range(REVIEWERS)]
    cases = factories.cases_in_review_bulk(workflow, CASES)
    truth = {case.id: DEMO_LABELS[case.metadata["n"] % len(DEMO_LABELS)] for case in cases}
    start = threading.Barrier(REVIEWERS)
    failures: list[BaseException] = []
    refusals: Counter[str] = Counter()
    lock = threading.Lock()

    def walk_away(reviewer) -> None:
        assert services.review_next(workflow=workflow, reviewer=reviewer) is not None

    def review_until_empty(reviewer) -> None:
        while True:
            assignment = services.review_next(workflow=workflow, reviewer=reviewer)
            if assignment is None:
                if not ReviewTask.objects.filter(workflow=workflow, status="open").exists():
                    return
                time.sleep(0.05)
                continue
            case_id = assignment.task.case_id
            try:
                services.verdict_submit(
                    task_id=assignment.task_id, reviewer=reviewer, label=truth[case_id]
                )
            except (errors.LeaseExpired, errors.NotAssigned) as refusal:
                with lock:
                    refusals[type(refusal).__name__] += 1

    def run(index: int, reviewer) -> None:
        try:
            start.wait()
            if index < WALKERS:
                walk_away(reviewer)
            else:
                review_until_empty(reviewer)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i, reviewer)) for i, reviewer in enumerate(reviewers)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    elapsed = time.perf_counter() - started
    assert not any(thread.is_alive() for thread in threads), "reviewers did not finish"
    assert not failures, failures

    # Nothing lost: every task done, every case decided with the reviewers' label.
    assert not ReviewTask.objects.filter(workflow=workflow).exclude(status=TaskStatus.DONE).exists()
    decided = dict(Case.objects.filter(workflow=workflow).values_list("id", "decision_label"))
    assert decided == truth
    assert not Case.objects.filter(workflow=workflow).exclude(status=CaseStatus.DECIDED).exists()

    # Exactly the verdicts each case needs, from different reviewers.
    per_task: dict[int, list[int]] = defaultdict(list)
    for task_id, reviewer_id in Verdict.objects.filter(
        task__workflow=workflow, retracted_at__isnull=True
    ).values_list("task_id", "reviewer_id"):
        per_task[task_id].append(reviewer_id)
    assert len(per_task) == CASES
    assert all(len(ids) == CONSENSUS == len(set(ids)) for ids in per_task.values())

    # Never two live leases on one task at once: the leases of each task, in order, each
    # end (completed, or expired at the latest) before the next begins.
    leases: dict[int, list[tuple]] = defaultdict(list)
    for task_id, leased_at, ended_at, expires_at in Assignment.objects.filter(
        task__workflow=workflow
    ).values_list("task_id", "leased_at", "ended_at", "expires_at"):
        effective_end = min(ended_at, expires_at) if ended_at else expires_at
        leases[task_id].append((leased_at, effective_end))
    for spans in leases.values():
        spans.sort()
        for (_, end), (begin, _) in itertools.pairwise(spans):
            assert begin >= end
    walked = Assignment.objects.filter(
        task__workflow=workflow, reviewer__in=reviewers[:WALKERS]
    ).values_list("state", flat=True)
    assert sorted(walked) == ["expired"] * WALKERS
    print(
        f"\n{REVIEWERS} reviewers, {CASES} cases x {CONSENSUS} verdicts in {elapsed:.1f} s; "
        f"refused late verdicts: {dict(refusals)}"
    )
