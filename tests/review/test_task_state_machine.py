"""The review task state machine: the table, its one function, and the event trail."""

import itertools
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from review import errors, services
from review.models import (
    Assignment,
    AssignmentState,
    ReviewTask,
    ReviewTaskEvent,
    TaskKind,
    TaskStatus,
)
from tests.review import factories
from workflows.models import ActorType, CaseStatus

pytestmark = pytest.mark.django_db

TABLE = services.REVIEW_TASK_TRANSITIONS
PAIRS = list(itertools.product(TaskStatus.values, repeat=2))


def test_every_status_has_a_row_in_the_table():
    assert set(TABLE) == set(TaskStatus.values)
    assert all(set(moves) <= set(TaskStatus.values) for moves in TABLE.values())


def task_at(workflow, status):
    """A task put straight into ``status`` (a fixture: no service moves it there)."""
    _case, task = factories.case_in_review(workflow)
    ReviewTask.objects.filter(pk=task.pk).update(status=status)
    task.refresh_from_db()
    return task


@pytest.mark.parametrize(("start", "target"), PAIRS)
def test_each_move_is_allowed_by_the_table_or_refused(workflow, reviewer, start, target):
    task = task_at(workflow, start)
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(pk=task.pk)
        if target in TABLE[start]:
            event = services.review_task_transition(
                task=task,
                to_status=target,
                actor_type=ActorType.USER,
                actor=reviewer,
                reason="table test",
                data={"n": 1},
            )
        else:
            with pytest.raises(errors.InvalidTaskTransition) as refused:
                services.review_task_transition(
                    task=task, to_status=target, actor_type=ActorType.SYSTEM, reason="table test"
                )
            assert refused.value.status_code == 409
            event = None
    stored = ReviewTask.objects.get(pk=task.pk)
    if event is None:
        assert stored.status == start
        assert not ReviewTaskEvent.objects.filter(task=task).exists()
        return
    assert stored.status == target
    assert (stored.closed_at is None) == (target == TaskStatus.OPEN)
    trail = list(ReviewTaskEvent.objects.filter(task=task))
    assert [(e.from_status, e.to_status) for e in trail] == [(start, target)]
    assert trail[0].actor == reviewer and trail[0].actor_type == ActorType.USER
    assert trail[0].reason == "table test" and trail[0].data == {"n": 1}


@pytest.mark.parametrize(("start", "target"), PAIRS)
def test_the_bulk_variant_follows_the_same_table(workflow, start, target):
    task = task_at(workflow, start)
    with transaction.atomic():
        tasks = list(ReviewTask.objects.select_for_update().filter(pk=task.pk))
        if target in TABLE[start]:
            services.review_tasks_transition(
                tasks=tasks, to_status=target, actor_type=ActorType.SYSTEM, reason="bulk"
            )
        else:
            with pytest.raises(errors.InvalidTaskTransition):
                services.review_tasks_transition(
                    tasks=tasks, to_status=target, actor_type=ActorType.SYSTEM, reason="bulk"
                )
    allowed = target in TABLE[start]
    assert ReviewTask.objects.get(pk=task.pk).status == (target if allowed else start)
    moves = list(ReviewTaskEvent.objects.filter(task=task).values_list("from_status", "to_status"))
    assert moves == ([(start, target)] if allowed else [])


def test_a_bulk_batch_with_one_bad_move_changes_nothing(workflow):
    good = task_at(workflow, TaskStatus.OPEN)
    bad = task_at(workflow, TaskStatus.CANCELLED)
    with transaction.atomic(), pytest.raises(errors.InvalidTaskTransition):
        services.review_tasks_transition(
            tasks=[good, bad], to_status=TaskStatus.CANCELLED, actor_type="system", reason="t"
        )
    assert ReviewTask.objects.get(pk=good.pk).status == TaskStatus.OPEN
    assert not ReviewTaskEvent.objects.exists()


# --- Every service that moves a task leaves its event --------------------------------------


def trail(task):
    return [
        (e.from_status, e.to_status, e.actor_type)
        for e in ReviewTaskEvent.objects.filter(task_id=task.pk)
    ]


def test_a_deciding_verdict_closes_the_task_and_its_undo_reopens_it(workflow, reviewer):
    case, task = factories.case_in_review(workflow)
    services.review_next(workflow=workflow, reviewer=reviewer)
    verdict = services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE and task.closed_at is not None
    assert trail(task) == [(TaskStatus.OPEN, TaskStatus.DONE, ActorType.USER)]

    services.verdict_undo(reviewer=reviewer, verdict_id=verdict.pk)
    task.refresh_from_db()
    case.refresh_from_db()
    assert task.status == TaskStatus.OPEN and task.closed_at is None
    assert case.status == CaseStatus.IN_REVIEW
    assert trail(task)[-1] == (TaskStatus.DONE, TaskStatus.OPEN, ActorType.USER)
    assert ReviewTaskEvent.objects.filter(task=task).last().data == {"verdict": verdict.pk}


def test_an_audit_label_closes_the_task_with_an_event(workflow, reviewer):
    case, _ = factories.case_in_review(workflow)
    ReviewTask.objects.filter(case=case).delete()
    type(case).objects.filter(pk=case.pk).update(
        status=CaseStatus.DECIDED, decision_label="ok", decision_source="model"
    )
    with transaction.atomic():
        task = services.review_task_open(
            case=case, kind=TaskKind.AUDIT, reason="audit", show_suggestion=False
        )
    services.review_next(workflow=workflow, reviewer=reviewer)
    services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="scratch")
    assert trail(task) == [(TaskStatus.OPEN, TaskStatus.DONE, ActorType.USER)]


@pytest.fixture
def gold_case(workflow):
    case, task = factories.case_in_review(workflow)
    task.delete()
    type(case).objects.filter(pk=case.pk).update(
        status=CaseStatus.DECIDED, is_gold=True, gold_label="scratch"
    )
    workflow.gold_rate = 1.0
    workflow.save()
    return case


def test_gold_tasks_close_with_an_event_however_they_end(workflow, reviewer, gold_case):
    # Labelled: done.
    labelled = services.review_next(workflow=workflow, reviewer=reviewer).task
    services.verdict_submit(task_id=labelled.pk, reviewer=reviewer, label="ok")
    assert trail(labelled) == [(TaskStatus.OPEN, TaskStatus.DONE, ActorType.USER)]

    # Skipped, given back, lease run out: cancelled (each by another reviewer).
    users = [factories.reviewer_create(name, workflow) for name in ("sam", "rob", "eve")]
    skipped = services.review_next(workflow=workflow, reviewer=users[0]).task
    services.verdict_skip(task_id=skipped.pk, reviewer=users[0], reason="blurry")
    released = services.review_next(workflow=workflow, reviewer=users[1]).task
    assert services.assignment_release(task_id=released.pk, reviewer=users[1])
    lapsed = services.review_next(workflow=workflow, reviewer=users[2]).task
    Assignment.objects.filter(task=lapsed).update(expires_at=timezone.now())
    services.assignments_expire()

    for task, actor_type in (
        (skipped, ActorType.USER),
        (released, ActorType.USER),
        (lapsed, ActorType.SYSTEM),
    ):
        assert task.kind == TaskKind.GOLD
        assert ReviewTask.objects.get(pk=task.pk).status == TaskStatus.CANCELLED
        assert trail(task) == [(TaskStatus.OPEN, TaskStatus.CANCELLED, actor_type)]


# --- Assignments (leases): end once, never renewed --------------------------------------

LEASE_TABLE = services.ASSIGNMENT_TRANSITIONS
LEASE_PAIRS = list(itertools.product(AssignmentState.values, repeat=2))


def test_every_lease_state_has_a_row_and_only_active_moves():
    assert set(LEASE_TABLE) == set(AssignmentState.values)
    assert [state for state, moves in LEASE_TABLE.items() if moves] == [
        AssignmentState.ACTIVE,
        AssignmentState.EXPIRED,
    ]
    # A lease marked expired may only complete: a late verdict nobody else stood in for.
    assert LEASE_TABLE[AssignmentState.EXPIRED] == {AssignmentState.COMPLETED}


def lease_at(workflow, reviewer, state):
    _case, task = factories.case_in_review(workflow)
    now = timezone.now()
    return Assignment.objects.create(
        task=task, reviewer=reviewer, state=state, expires_at=now + timedelta(minutes=5)
    )


@pytest.mark.parametrize(("start", "target"), LEASE_PAIRS)
def test_each_lease_move_is_allowed_by_the_table_or_refused(workflow, reviewer, start, target):
    lease = lease_at(workflow, reviewer, start)
    now = timezone.now()
    if target in LEASE_TABLE[start]:
        services.assignment_end(assignment=lease, to_state=target, now=now, skip_reason="why")
        lease.refresh_from_db()
        assert (lease.state, lease.ended_at, lease.skip_reason) == (target, now, "why")
    else:
        with pytest.raises(errors.InvalidLeaseTransition):
            services.assignment_end(assignment=lease, to_state=target, now=now)
        lease.refresh_from_db()
        assert lease.state == start and lease.ended_at is None


@pytest.mark.parametrize(("start", "target"), LEASE_PAIRS)
def test_the_bulk_lease_end_moves_only_what_the_table_allows(workflow, reviewer, start, target):
    lease = lease_at(workflow, reviewer, start)
    ended = services.assignments_end(
        leases=Assignment.objects.filter(pk=lease.pk), to_state=target, now=timezone.now()
    )
    allowed = target in LEASE_TABLE[start]
    assert ended == allowed
    assert Assignment.objects.get(pk=lease.pk).state == (target if allowed else start)
