"""Writes for the review queue: opening tasks, claiming them, verdicts, skips and undo.

Invariants kept here (and backed by constraints in review/models.py):

* A task has at most one active assignment (lease) at a time; a lease past its
  ``expires_at`` no longer holds the task, whether or not the periodic
  ``assignments_expire`` has marked it yet.
* A reviewer has at most one standing verdict per task.
* Rows are locked in one order, the task and then its case, so that two operations on
  the same case queue behind each other instead of deadlocking; a case's status changes
  only through ``workflows.services.case_transition`` while its row lock is held.
* A task's status changes only through ``review_task_transition`` (or
  ``review_tasks_transition``), checked against ``REVIEW_TASK_TRANSITIONS`` and recorded
  as a ``ReviewTaskEvent``, while the task's row lock is held.
* Every refusal is a ``kernel.errors.DomainError``, raised before anything is written
  or inside the transaction that it rolls back: nothing is left half-stored.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BigIntegerField, Exists, JSONField, OuterRef, QuerySet
from django.db.models.constants import OnConflict
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery
from django.utils import timezone

from accounts.types import User
from decisions.routing import Level, ReviewReason
from kernel import joinedwrites
from kernel.errors import InvalidInput, NotFound
from kernel.prepared import Prepared
from review.claiming import task_claim
from review.consensus import ConsensusState, consensus_state
from review.errors import (
    AlreadyUndone,
    CaseAlreadyDecided,
    CaseMovedOn,
    ChangeAlreadyDecided,
    ChangeAlreadyRequested,
    InvalidLeaseTransition,
    InvalidTaskTransition,
    LeaseExpired,
    NoChangeRequested,
    NotAssigned,
    NotLastVerdict,
    UndoWindowPassed,
    UnknownLabel,
    VerdictAlreadyGiven,
)
from review.hooks import audit_label_recorded
from review.models import (
    Assignment,
    AssignmentState,
    ReviewTask,
    ReviewTaskEvent,
    TaskKind,
    TaskStatus,
    Verdict,
)
from review.selectors import ADMIN_QUEUES, SHARED_QUEUE, lease_limit
from workflows.access import access_review, access_workflow
from workflows.models import ActorType, Case, CaseEvent, CaseStatus, DecisionSource, Workflow
from workflows.services import case_event_record, case_transition

MAX_COMMENT_LENGTH = 2000
MAX_SKIP_REASON_LENGTH = 200
MAX_CHANGE_REASON_LENGTH = 500
CHANGE_REQUEST_EVENT = "verdict_change_requested"
CHANGE_DECISION_EVENT = "verdict_change_decided"
CHANGE_DECISIONS = ("accept", "decline")
# Each failed attempt means another reviewer took the row between our snapshot and our
# lock; with SKIP LOCKED that is rare, so a few attempts suffice even with many reviewers.
CLAIM_ATTEMPTS = 25

# The reason a gold task shows: the one the workflow's ordinary tasks carry, so that a
# gold case looks like any other case in the queue.
GOLD_COVER_REASON = {
    Level.HUMAN_ONLY: ReviewReason.HUMAN_ONLY,
    Level.SHADOW: ReviewReason.SHADOW,
    Level.ASSISTANCE: ReviewReason.ASSISTANCE,
    Level.PARTIAL: ReviewReason.LOW_CONFIDENCE,
    Level.FULL: ReviewReason.AUDIT,
}
SUGGESTING_LEVELS = frozenset({Level.ASSISTANCE, Level.PARTIAL})


def gold_draw() -> float:
    """A number in [0, 1): a gold case is slipped in when it falls below the gold rate."""
    return random.random()  # noqa: S311 - a sampling rate, not a secret


def hidden_suggestion_draw() -> float:
    """A number in [0, 1): an assistance case's suggestion is hidden when it falls below
    the workflow's ``hidden_suggestion_rate`` (the rubber-stamp guard, D51)."""
    return random.random()  # noqa: S311 - a sampling rate, not a secret


# The review task state machine: a table of allowed moves, changed only by
# review_task_transition and review_tasks_transition.
REVIEW_TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    # Done: its verdicts settled it. Cancelled: a gold task whose reviewer let it go.
    TaskStatus.OPEN: frozenset({TaskStatus.DONE, TaskStatus.CANCELLED}),
    # A verdict undone within its window reopens the task it closed.
    TaskStatus.DONE: frozenset({TaskStatus.OPEN}),
    TaskStatus.CANCELLED: frozenset(),
}


def review_task_transition(
    *,
    task: ReviewTask,
    to_status: str,
    actor_type: str,
    actor: Any = None,
    reason: str,
    data: dict[str, Any] | None = None,
    fields: tuple[str, ...] = (),
) -> ReviewTaskEvent:
    """Move ``task`` to ``to_status`` and record why. Raises InvalidTaskTransition.

    Call inside a transaction, holding the task's row lock (``select_for_update``).
    ``closed_at`` follows the status (set on closing, cleared on reopening); ``fields``
    names the other fields the caller changed, saved in the same UPDATE. Reopening may
    break the one-open-task-per-case constraint: the IntegrityError is the caller's.
    """
    from_status = task.status
    if to_status not in REVIEW_TASK_TRANSITIONS[from_status]:
        raise InvalidTaskTransition(
            f"review task {task.pk} cannot go from {from_status} to {to_status}"
        )
    task.status = to_status
    task.closed_at = None if to_status == TaskStatus.OPEN else timezone.now()
    joinedwrites.update(task, ["status", "closed_at", *fields])
    event = ReviewTaskEvent(
        task=task,
        from_status=from_status,
        to_status=to_status,
        actor_type=actor_type,
        actor=actor,
        reason=reason,
        data=data or {},
    )
    joinedwrites.insert(event, pk_unknown=True)
    return event


def review_tasks_transition(
    *, tasks: list[ReviewTask], to_status: str, actor_type: str, reason: str
) -> None:
    """``review_task_transition`` for a batch: one UPDATE and one INSERT of events.

    Call inside a transaction holding the tasks' row locks; every move is checked
    against the same table before anything is written.
    """
    for task in tasks:
        if to_status not in REVIEW_TASK_TRANSITIONS[task.status]:
            raise InvalidTaskTransition(
                f"review task {task.pk} cannot go from {task.status} to {to_status}"
            )
    if not tasks:
        return
    closed_at = None if to_status == TaskStatus.OPEN else timezone.now()
    ReviewTask.objects.filter(pk__in=[task.pk for task in tasks]).update(
        status=to_status, closed_at=closed_at
    )
    events = [
        ReviewTaskEvent(
            task=task,
            from_status=task.status,
            to_status=to_status,
            actor_type=actor_type,
            reason=reason,
        )
        for task in tasks
    ]
    for task in tasks:
        task.status = to_status
        task.closed_at = closed_at
    ReviewTaskEvent.objects.bulk_create(events)


# An assignment (lease) ends once, in one of four ways. While active it may be renewed
# (its ``expires_at`` moves, bounded by ``LEASE_MAX_FACTOR``). The row itself (state,
# ended_at, skip_reason) records how it ended, so the task's assignments are its lease
# trail and no separate event row is written. A lease marked expired may still complete:
# a late verdict is accepted while nobody else holds the case (D47).
ASSIGNMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    AssignmentState.ACTIVE: frozenset(
        {
            AssignmentState.COMPLETED,
            AssignmentState.EXPIRED,
            AssignmentState.SKIPPED,
            AssignmentState.RELEASED,
        }
    ),
    AssignmentState.COMPLETED: frozenset(),
    AssignmentState.EXPIRED: frozenset({AssignmentState.COMPLETED}),
    AssignmentState.SKIPPED: frozenset(),
    AssignmentState.RELEASED: frozenset(),
}


def assignment_end(
    *, assignment: Assignment, to_state: str, now: datetime, skip_reason: str = ""
) -> None:
    """End one lease as ``to_state``. Raises InvalidLeaseTransition.

    Call inside a transaction holding the lease's task's row lock.
    """
    if to_state not in ASSIGNMENT_TRANSITIONS[assignment.state]:
        raise InvalidLeaseTransition(
            f"assignment {assignment.pk} cannot go from {assignment.state} to {to_state}"
        )
    assignment.state = to_state
    assignment.ended_at = now
    assignment.skip_reason = skip_reason
    joinedwrites.update(assignment, ["state", "ended_at", "skip_reason"])


def assignments_end(*, leases: QuerySet[Assignment], to_state: str, now: datetime) -> int:
    """End, as ``to_state``, those of ``leases`` the table lets move there (one UPDATE);
    the others are left as they are. Returns how many ended."""
    from_states = [state for state, moves in ASSIGNMENT_TRANSITIONS.items() if to_state in moves]
    return leases.filter(state__in=from_states).update(state=to_state, ended_at=now)


def review_task_open(
    *, case: Case, kind: str, reason: ReviewReason | str | None, show_suggestion: bool
) -> ReviewTask:
    """Put ``case`` in its workflow's review queue. Call inside the case's transaction."""
    return review_tasks_open(
        openings=[TaskOpening(case=case, kind=kind, reason=reason, show_suggestion=show_suggestion)]
    )[0]


@dataclass(frozen=True)
class TaskOpening:
    """One case to put in its workflow's review queue (``review_tasks_open``)."""

    case: Case
    kind: str
    reason: ReviewReason | str | None
    show_suggestion: bool


def review_tasks_open(*, openings: list[TaskOpening]) -> list[ReviewTask]:
    """``review_task_open`` for a batch: one INSERT of tasks (and one UPDATE of the cases
    whose suggestion is hidden, when there are any). Call inside the cases' transaction."""
    assert transaction.get_connection().in_atomic_block, "open a task inside the case transaction"
    tasks = []
    hidden_cases = []
    for opening in openings:
        case, kind, show_suggestion = opening.case, opening.kind, opening.show_suggestion
        workflow = case.workflow
        required = workflow.consensus_required if kind == TaskKind.REVIEW else 1
        # The rubber-stamp guard (D51): on an assisted review task, a share of suggestions
        # is hidden, drawn once here and recorded on the task.
        suggestion_hidden = (
            show_suggestion
            and kind == TaskKind.REVIEW
            and workflow.level == Level.ASSISTANCE
            and workflow.hidden_suggestion_rate > 0
            and hidden_suggestion_draw() < workflow.hidden_suggestion_rate
        )
        if suggestion_hidden:
            # Hidden everywhere a reviewer could read it: the case API and saliency follow
            # the case's flag.
            case.suggestion_visible = False
            hidden_cases.append(case.pk)
        reason = opening.reason
        tasks.append(
            ReviewTask(
                case=case,
                workflow=workflow,
                kind=kind,
                reason=str(reason.value if isinstance(reason, ReviewReason) else reason or ""),
                show_suggestion=show_suggestion and not suggestion_hidden,
                suggestion_hidden=suggestion_hidden,
                verdicts_required=max(1, required),
                agreement_required=max(1, required),
            )
        )
    if hidden_cases:
        Case.objects.filter(pk__in=hidden_cases).update(suggestion_visible=False)
    return ReviewTask.objects.bulk_create(tasks)


# --- Access ----------------------------------------------------------------------------


def review_task_for_reviewer(*, task_id: int, reviewer: User) -> ReviewTask:
    """The task ``task_id`` if ``reviewer`` reviews its workflow; NotFound otherwise.

    Another reviewer's gold task is reported as not found, like a task in a workflow the
    user does not belong to: nothing tells a reviewer which cases are gold.
    """
    task = ReviewTask.objects.select_related("workflow").filter(pk=task_id).first()
    if task is None or (task.kind == TaskKind.GOLD and task.for_reviewer_id != reviewer.pk):
        raise NotFound(f"review task {task_id} not found")
    try:
        access_review(reviewer, task.workflow)
    except NotFound as exc:
        raise NotFound(f"review task {task_id} not found") from exc
    return task


def _label_check(workflow: Workflow, label: Any) -> str:
    if not isinstance(label, str) or label not in workflow.labels:
        allowed = ", ".join(workflow.labels)
        raise UnknownLabel(
            f"label {label!r} is not in this workflow's label set; allowed: {allowed}",
            field="label",
        )
    return label


# --- Claiming --------------------------------------------------------------------------


def _lease_end(workflow: Workflow, now: datetime) -> datetime:
    return now + timedelta(seconds=workflow.review_lease_seconds)


def _lease_renew(*, assignment: Assignment, workflow: Workflow, now: datetime) -> bool:
    """Move an active lease's end to a full lease from ``now``, never past its limit and
    never backwards. Returns whether it moved. Hold the task's lock or own the lease."""
    until = min(
        _lease_end(workflow, now), lease_limit(workflow=workflow, leased_at=assignment.leased_at)
    )
    if until <= assignment.expires_at:
        return False
    assignment.expires_at = until
    assignment.save(update_fields=["expires_at"])
    return True


def _leases_lapsed_end(*, task: ReviewTask, now: datetime) -> None:
    """Mark as expired the active leases on ``task`` that ran out. Hold the task's lock."""
    assignments_end(
        leases=task.assignments.filter(expires_at__lte=now),
        to_state=AssignmentState.EXPIRED,
        now=now,
    )


def _lease_create(
    *, task: ReviewTask, reviewer: User, now: datetime, lapsed: bool = True
) -> Assignment | None:
    """Lease ``task`` to ``reviewer``; None if the one-active-lease constraint says no.

    ``lapsed=False``: the caller, holding the task's lock, has seen no active lease that
    ran out, so there is none to end first.
    """
    if lapsed:
        _leases_lapsed_end(task=task, now=now)
    assignment = Assignment(task=task, reviewer=reviewer, expires_at=_lease_end(task.workflow, now))
    if not _insert_unless_conflict(assignment):
        return None
    return assignment


def _insert_unless_conflict(row: Assignment) -> bool:
    """Insert ``row`` in one statement, ``INSERT … ON CONFLICT DO NOTHING RETURNING id``
    (PostgreSQL and SQLite): False, and nothing written, when a unique constraint (the
    one active lease per task) says no. No savepoint around it: a conflict is no error,
    so the caller's transaction stays usable."""
    meta = Assignment._meta
    query = InsertQuery(Assignment, on_conflict=OnConflict.IGNORE)
    query.insert_values([f for f in meta.concrete_fields if not f.primary_key], [row])
    compiler = query.get_compiler(using=router.db_for_write(Assignment))
    compiler.returning_fields = [meta.pk]
    [(sql, params)] = compiler.as_sql()
    with connections[compiler.using].cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding = False
    row._state.db = compiler.using
    return True


def _shared_task_claim(
    *, workflow: Workflow, reviewer: User, now: datetime, queue: str, own_skips: bool
) -> Assignment | None:
    """Lease the next claimable task: the claim statement picks and locks it (SKIP LOCKED
    on PostgreSQL; the IMMEDIATE transaction serialises this on SQLite), then the lease's
    INSERT … ON CONFLICT DO NOTHING. Three statements with the held-lease check before.

    A task whose lock we got may still have been leased by someone who committed between
    our snapshot and our lock: the one-active-lease index refuses our INSERT, and the
    next task is tried.
    """
    tried: list[int] = []
    for _ in range(CLAIM_ATTEMPTS):
        claimed = task_claim(
            workflow=workflow,
            reviewer=reviewer,
            now=now,
            queue=queue,
            own_skips=own_skips,
            tried=tried,
        )
        if claimed is None:
            return None
        task, lapsed = claimed
        tried.append(task.pk)
        task.workflow = workflow
        assignment = _lease_create(task=task, reviewer=reviewer, now=now, lapsed=lapsed)
        if assignment is not None:
            return assignment
    return None


def _gold_task_claim(*, workflow: Workflow, reviewer: User, now: datetime) -> Assignment | None:
    """Slip in a gold case this reviewer has not seen, as a task of their own."""
    seen = ReviewTask.objects.filter(case=OuterRef("pk"), kind=TaskKind.GOLD, for_reviewer=reviewer)
    labelled = Verdict.objects.filter(case=OuterRef("pk"), reviewer=reviewer)
    queued = ReviewTask.objects.filter(case=OuterRef("pk"), status=TaskStatus.OPEN).exclude(
        kind=TaskKind.GOLD
    )
    case = (
        Case.objects.filter(workflow=workflow, is_gold=True)
        .exclude(gold_label="")
        .filter(~Exists(seen), ~Exists(labelled), ~Exists(queued))
        .order_by("created_at", "id")
        .first()
    )
    if case is None:
        return None
    level = Level(workflow.level)
    show_suggestion = level in SUGGESTING_LEVELS and case.predictions.exists()
    try:
        with transaction.atomic():
            task = ReviewTask.objects.create(
                case=case,
                workflow=workflow,
                kind=TaskKind.GOLD,
                reason=GOLD_COVER_REASON[level].value,
                show_suggestion=show_suggestion,
                for_reviewer=reviewer,
            )
            assignment = Assignment.objects.create(
                task=task, reviewer=reviewer, expires_at=_lease_end(workflow, now)
            )
    except IntegrityError:
        return None
    return assignment


def _lease_held_query(
    reviewer_id: int, now: Any, workflow_id: int, after_task_id: int
) -> QuerySet[Assignment]:
    return (
        Assignment.objects.select_related("task__workflow")
        .filter(
            reviewer_id=reviewer_id,
            state=AssignmentState.ACTIVE,
            expires_at__gt=now,
            task__workflow_id=workflow_id,
        )
        .exclude(task_id=after_task_id)
        .order_by("leased_at", "id")
    )[:1]


# The reviewer's live lease in the workflow, other than the one on screen (D141).
_LEASE_HELD = Prepared(
    Assignment,
    _lease_held_query,
    reviewer_id=-7_000_021,
    now=datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC),
    workflow_id=-7_000_022,
    after_task_id=-7_000_023,
)


def review_next(
    *, workflow: Workflow, reviewer: User, after_task_id: int | None = None
) -> Assignment | None:
    """Lease the next case in ``workflow``'s queue to ``reviewer``; None when it is empty.

    A reviewer who already holds a live lease in the workflow gets it back instead of a
    new one (no hoarding). ``after_task_id`` is the task on the reviewer's screen: a
    client prefetching the next case passes it, so it may hold that one and one more.
    Admins get tasks waiting for adjudication first. At ``workflow.gold_rate`` a gold
    case the reviewer has not seen is slipped in.
    """
    may_adjudicate = access_review(reviewer, workflow)
    now = timezone.now()
    with transaction.atomic():
        held = _LEASE_HELD.first(
            reviewer_id=reviewer.pk,
            now=now,
            workflow_id=workflow.pk,
            # No task has id 0 (nor one past 64 bits): excluding it excludes nothing.
            after_task_id=after_task_id if after_task_id and after_task_id < 2**63 else 0,
        )
        if held is not None:
            # A lease handed back is renewed, so the screen never gets one that is
            # about to run out (D46).
            _lease_renew(assignment=held, workflow=workflow, now=now)
            return held
        assignment = None
        if workflow.gold_rate > 0 and gold_draw() < workflow.gold_rate:
            assignment = _gold_task_claim(workflow=workflow, reviewer=reviewer, now=now)
        queues = [*(ADMIN_QUEUES if may_adjudicate else ()), SHARED_QUEUE]
        # Tasks this reviewer skipped come last: others get them first (D48).
        for own_skips in (False, True):
            for queue in queues:
                if assignment is None:
                    assignment = _shared_task_claim(
                        workflow=workflow,
                        reviewer=reviewer,
                        now=now,
                        queue=queue,
                        own_skips=own_skips,
                    )
        return assignment


def assignments_expire(*, now: datetime | None = None) -> int:
    """End the leases that ran out, returning their tasks to the queue. Returns how many.

    A gold task is one reviewer's own; when its lease runs out it is cancelled (the
    reviewer has seen that gold case) rather than left open.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lapsed = Assignment.objects.filter(state=AssignmentState.ACTIVE, expires_at__lte=now)
        # Tasks before their leases, the order every writer here locks in.
        gold_tasks = list(
            ReviewTask.objects.select_for_update()
            .filter(
                pk__in=lapsed.filter(task__kind=TaskKind.GOLD).values("task_id"),
                status=TaskStatus.OPEN,
            )
            .order_by("pk")
        )
        ended = assignments_end(leases=lapsed, to_state=AssignmentState.EXPIRED, now=now)
        review_tasks_transition(
            tasks=gold_tasks,
            to_status=TaskStatus.CANCELLED,
            actor_type=ActorType.SYSTEM,
            reason="the reviewer's lease on this gold case ran out",
        )
    return ended


# --- Verdicts --------------------------------------------------------------------------


class _Unread:
    """Not read yet (a lease argument the callee reads itself)."""


def _task_and_case_lock(task_id: int) -> tuple[ReviewTask, Case]:
    """Lock the task, then its case: the one order every writer here uses.

    No join in the locking queries: ``FOR UPDATE`` over a join would lock the workflow
    row too and serialise every verdict in the workflow.
    """
    task = ReviewTask.objects.select_for_update().get(pk=task_id)
    case = Case.objects.select_for_update().get(pk=task.case_id)
    return task, case


def _lease_latest(*, task: ReviewTask, reviewer: User) -> Assignment | None:
    return task.assignments.filter(reviewer=reviewer).order_by("-leased_at", "-id").first()


def _lease_of(
    *,
    task: ReviewTask,
    case: Case,
    reviewer: User,
    now: datetime,
    latest: Assignment | type[_Unread] | None = _Unread,
) -> Assignment:
    """The reviewer's live lease on ``task``, or the refusal that says why there is none.

    Call holding the task's lock; ``latest`` is the reviewer's newest lease on the task
    when the caller has read it under that lock (``_lease_and_standing``).
    """
    if task.status != TaskStatus.OPEN or (
        task.kind == TaskKind.REVIEW and case.status != CaseStatus.IN_REVIEW
    ):
        if case.status == CaseStatus.DECIDED and task.kind == TaskKind.REVIEW:
            raise CaseAlreadyDecided(f"case {case.id} is already decided")
        raise CaseAlreadyDecided(f"review task {task.pk} is closed")
    if latest is _Unread:
        latest = _lease_latest(task=task, reviewer=reviewer)
    if not isinstance(latest, Assignment):
        raise NotAssigned(
            f"review task {task.pk} is not assigned to you; claim it with review/next"
        )
    if latest.state == AssignmentState.ACTIVE and latest.expires_at > now:
        return latest
    if latest.state in (AssignmentState.ACTIVE, AssignmentState.EXPIRED):
        # A late verdict (D47): the lease ran out, but it stands while nobody else holds
        # the case. An active lease is the only one on the task (a constraint); a lease
        # marked expired stands if no one else has taken a live one since.
        if latest.state == AssignmentState.ACTIVE:
            return latest
        others = task.assignments.filter(state=AssignmentState.ACTIVE).exclude(reviewer=reviewer)
        if not others.filter(expires_at__gt=now).exists():
            _leases_lapsed_end(task=task, now=now)
            return latest
        raise LeaseExpired(
            f"your lease on review task {task.pk} expired at {latest.expires_at.isoformat()} "
            "and another reviewer has the case now"
        )
    if latest.state == AssignmentState.COMPLETED:
        raise VerdictAlreadyGiven(f"you already gave a verdict on review task {task.pk}")
    raise NotAssigned(f"review task {task.pk} is no longer assigned to you (you {latest.state} it)")


def _case_decide(
    *,
    task: ReviewTask,
    case: Case,
    reviewer: User,
    state: ConsensusState,
    verdicts: list[Standing],
    now: datetime,
) -> None:
    """Decide ``case`` with the consensus label. Hold the task's and the case's locks."""
    label = state.label
    assert label is not None
    prediction = case.deciding_prediction
    case.decision_label = label
    case.decision_source = DecisionSource.HUMAN
    case.decision_confidence = None
    case.decision_model_version = None
    case.decided_by = reviewer
    case.decided_at = now
    case.human_label = label
    case.labelled_at = now
    if state.adjudicated:
        reason = f"adjudicated by {reviewer.get_username()} after reviewers disagreed"
    elif len(verdicts) == 1:
        reason = f"decided by reviewer {reviewer.get_username()}"
    else:
        reason = f"{task.agreement_required} reviewers agreed"
    data: dict[str, Any] = {
        "label": label,
        "task": task.pk,
        "verdicts": [{"reviewer": v.reviewer_name, "label": v.label} for v in verdicts],
        "adjudicated": state.adjudicated,
    }
    if prediction is not None:
        data["model_label"] = prediction.label
        data["human_overrode_model"] = prediction.label != label
    # The decision and the status move in one UPDATE.
    case_transition(
        case=case,
        to_status=CaseStatus.DECIDED,
        actor_type=ActorType.USER,
        actor=reviewer,
        reason=reason,
        data=data,
        fields=(
            "decision_label",
            "decision_source",
            "decision_confidence",
            "decision_model_version",
            "decided_by",
            "decided_at",
            "human_label",
            "labelled_at",
        ),
    )


class Standing(NamedTuple):
    """A standing (not retracted) verdict on a task, as consensus and its events need it.

    A task's verdicts are written holding its lock, so their ids are in the order they
    were given: the one order of a task's verdicts."""

    pk: int
    label: str
    reviewer_id: int
    reviewer_name: str


def _standing_verdicts(task: ReviewTask) -> list[Standing]:
    rows = (
        task.verdicts.filter(retracted_at__isnull=True)
        .order_by("id")
        .values_list("id", "label", "reviewer_id", f"reviewer__{User.USERNAME_FIELD}")
    )
    return [Standing(*row) for row in rows]


def _standing_sql(connection: BaseDatabaseWrapper) -> str:
    """A scalar subquery: the standing verdicts of the outer query's task, as a JSON array
    of ``[id, label, reviewer_id, reviewer_name]`` in id order."""
    verdict, user = Verdict._meta, User._meta
    name = user.get_field(User.USERNAME_FIELD).column  # type: ignore[union-attr]  # a field
    rows = (
        f"FROM {verdict.db_table} v JOIN {user.db_table} u ON u.{user.pk.column} = v.reviewer_id "
        f"WHERE v.task_id = {Assignment._meta.db_table}.task_id AND v.retracted_at IS NULL"
    )
    # Identifiers from the models' metadata only; no value is ever formatted in.
    if connection.vendor == "postgresql":
        return (
            "SELECT COALESCE(jsonb_agg(jsonb_build_array(v.id, v.label, v.reviewer_id, "
            f"u.{name}) ORDER BY v.id), '[]'::jsonb) {rows}"
        )
    return (
        "SELECT json_group_array(json_array(s.id, s.label, s.reviewer_id, s.name)) FROM "  # noqa: S608
        f"(SELECT v.id, v.label, v.reviewer_id, u.{name} AS name {rows} ORDER BY v.id) s"
    )


def _verdict_key_sql(connection: BaseDatabaseWrapper) -> str | None:
    """PostgreSQL: the next key of the verdicts' identity column, drawn in the lease's
    read, so that the verdict's INSERT can join the writes it settles (D147). Other
    databases draw the key with the INSERT: None."""
    if connection.vendor != "postgresql":
        return None
    column = Verdict._meta.pk.column
    # Identifiers from the models' metadata only; no value is ever formatted in.
    return f"nextval(pg_get_serial_sequence('{Verdict._meta.db_table}', '{column}'))"


def _lease_and_standing_query(task_id: int, reviewer_id: int) -> QuerySet[Assignment]:
    # The database Prepared runs it on (the writers', as the lock before it).
    connection = connections[router.db_for_write(Assignment)]
    leases = (
        Assignment.objects.filter(task_id=task_id, reviewer_id=reviewer_id)
        .order_by("-leased_at", "-id")
        .annotate(standing=RawSQL(_standing_sql(connection), (), JSONField()))  # noqa: S611
    )
    key_sql = _verdict_key_sql(connection)
    if key_sql is not None:
        # A volatile output is computed after ORDER BY and LIMIT: one key per read.
        leases = leases.annotate(verdict_key=RawSQL(key_sql, (), BigIntegerField()))  # noqa: S611
    return leases[:1]


# Compiled once (D141): the two reads of every verdict.
_LEASE_AND_STANDING = Prepared(
    Assignment, _lease_and_standing_query, task_id=-7_000_001, reviewer_id=-7_000_002
)
# The task and its case locked in one statement, the task first (``OF`` lists the rows
# in the order every writer here locks them), with its workflow read but not locked.
_TASK_AND_CASE_LOCKED = Prepared(
    ReviewTask,
    lambda task_id: (
        ReviewTask.objects.select_for_update(of=("self", "case"))
        .select_related("case", "workflow")
        .filter(pk=task_id)[:1]
    ),
    task_id=-7_000_003,
)


def _lease_and_standing(
    *, task: ReviewTask, reviewer: User
) -> tuple[Assignment | None, list[Standing]]:
    """The reviewer's newest lease on ``task`` and the task's standing verdicts, in one
    statement (call holding the task's lock, so that both are read after it was taken).
    No lease: no verdicts either (there is nothing to give a verdict with)."""
    latest = _LEASE_AND_STANDING.first(task_id=task.pk, reviewer_id=reviewer.pk)
    if latest is None:
        return None, []
    rows = latest.standing  # type: ignore[attr-defined]  # the annotation
    return latest, sorted(Standing(*row) for row in rows)


def verdict_submit(*, task_id: int, reviewer: User, label: str, comment: str = "") -> Verdict:
    """Record ``reviewer``'s verdict on the task they hold, and act on it.

    * review task: once ``agreement_required`` verdicts agree the case is decided by a
      human with that label (see review.consensus for disagreements and adjudication);
    * audit task: the case's model decision stands; the verdict becomes its human label
      and an event records whether human and model agree;
    * gold task: recorded to measure the reviewer; it never decides anything.

    Refusals: unknown label (400), not assigned to you (409), lease expired (410),
    case already decided (409), not a reviewer of the workflow (404).
    """
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidInput(f"comment: at most {MAX_COMMENT_LENGTH} characters", field="comment")
    now = timezone.now()
    with transaction.atomic():
        # The task and its case are locked in one statement, the task first (``OF`` lists
        # the rows in the order every writer here locks them), the workflow read with them
        # but not locked; access is checked on the locked row (the same answer as
        # review_task_for_reviewer, with the membership cached): a refusal rolls back
        # having written nothing.
        task = _TASK_AND_CASE_LOCKED.first(task_id=task_id)
        if task is None or (task.kind == TaskKind.GOLD and task.for_reviewer_id != reviewer.pk):
            raise NotFound(f"review task {task_id} not found")
        workflow = task.workflow
        try:
            access_review(reviewer, workflow)
        except NotFound as exc:
            raise NotFound(f"review task {task_id} not found") from exc
        label = _label_check(workflow, label)
        case = task.case
        latest, standing = _lease_and_standing(task=task, reviewer=reviewer)
        assignment = _lease_of(task=task, case=case, reviewer=reviewer, now=now, latest=latest)
        if any(v.reviewer_id == reviewer.pk for v in standing):
            raise VerdictAlreadyGiven(f"you already gave a verdict on review task {task.pk}")
        verdict = Verdict(
            task=task,
            case=case,
            assignment=assignment,
            reviewer=reviewer,
            label=label,
            comment=comment,
        )
        # The key drawn with the lease (PostgreSQL): the INSERT joins what the verdict
        # settles, one statement for all (D140, D147); elsewhere it is written first.
        drawn_key = getattr(latest, "verdict_key", None)
        if drawn_key is None:
            joinedwrites.insert_returning_key(verdict)
        else:
            verdict.pk = drawn_key
        mine = Standing(verdict.pk, label, reviewer.pk, reviewer.get_username())
        with joinedwrites.joined():
            if drawn_key is not None:
                joinedwrites.insert(verdict)
            _verdict_settle(
                task=task,
                case=case,
                reviewer=reviewer,
                assignment=assignment,
                verdict=verdict,
                verdicts=[*standing, mine],
                now=now,
            )
    return verdict


def _verdict_settle(
    *,
    task: ReviewTask,
    case: Case,
    reviewer: User,
    assignment: Assignment,
    verdict: Verdict,
    verdicts: list[Standing],
    now: datetime,
) -> None:
    """Act on a verdict just recorded: the lease completed, then by the task's kind."""
    label = verdict.label
    assignment_end(assignment=assignment, to_state=AssignmentState.COMPLETED, now=now)
    if task.kind == TaskKind.REVIEW:
        _review_task_settle(task=task, case=case, reviewer=reviewer, now=now, verdicts=verdicts)
    elif task.kind == TaskKind.AUDIT:
        _audit_label(task=task, case=case, reviewer=reviewer, label=label, now=now)
    else:
        review_task_transition(
            task=task,
            to_status=TaskStatus.DONE,
            actor_type=ActorType.USER,
            actor=reviewer,
            reason="a reviewer labelled a gold case",
            data={"verdict": verdict.pk},
        )
        case_event_record(
            case=case,
            kind="gold_verdict",
            actor_type=ActorType.USER,
            actor=reviewer,
            reason="a reviewer labelled a gold case",
            data={
                "label": label,
                "gold_label": case.gold_label,
                "correct": label == case.gold_label,
            },
        )


def _review_task_settle(
    *,
    task: ReviewTask,
    case: Case,
    reviewer: User,
    now: datetime,
    verdicts: list[Standing] | None = None,
) -> None:
    """Apply the consensus rule to the task's standing verdicts (``verdicts`` when the
    caller, holding the task's lock, has just read them). Hold both locks."""
    if verdicts is None:
        verdicts = _standing_verdicts(task)
    state = consensus_state([v.label for v in verdicts], agreement_required=task.agreement_required)
    was_adjudication = task.needs_adjudication
    task.verdicts_required = state.verdicts_required
    task.needs_adjudication = state.needs_adjudication
    settled_fields = ("verdicts_required", "needs_adjudication")
    if state.decided:
        review_task_transition(
            task=task,
            to_status=TaskStatus.DONE,
            actor_type=ActorType.USER,
            actor=reviewer,
            reason="the verdicts decided the case",
            data={"label": state.label, "verdicts": [v.pk for v in verdicts]},
            fields=settled_fields,
        )
        _case_decide(
            task=task, case=case, reviewer=reviewer, state=state, verdicts=verdicts, now=now
        )
        return
    if state.needs_adjudication and not was_adjudication:
        case_event_record(
            case=case,
            kind="needs_adjudication",
            actor_type=ActorType.SYSTEM,
            reason="reviewers disagreed; waiting for an adjudicator",
            data={"verdicts": [v.label for v in verdicts]},
        )
    joinedwrites.update(task, settled_fields)


def _audit_label(
    *, task: ReviewTask, case: Case, reviewer: User, label: str, now: datetime
) -> None:
    """The model's decision stands; the verdict is its blind check. The automation checks
    (step down on falling accuracy) run on this fresh evidence once it is committed."""
    review_task_transition(
        task=task,
        to_status=TaskStatus.DONE,
        actor_type=ActorType.USER,
        actor=reviewer,
        reason="audit: a reviewer labelled the model-decided case",
    )
    case.human_label = label
    case.labelled_at = now
    joinedwrites.update(case, ["human_label", "labelled_at", "updated_at"])
    case_event_record(
        case=case,
        kind="audit_label",
        actor_type=ActorType.USER,
        actor=reviewer,
        reason="audit: a reviewer labelled the model-decided case blind",
        data={
            "label": label,
            "model_label": case.decision_label,
            "agrees_with_model": label == case.decision_label,
            "task": task.pk,
        },
    )
    audit_label_recorded(workflow_id=task.workflow_id)


def assignment_heartbeat(*, task_id: int, reviewer: User) -> Assignment:
    """Renew ``reviewer``'s lease on ``task_id`` while the case is on their screen and
    they are active (the screen stops calling when they are idle). Bounded: never past
    ``LEASE_MAX_FACTOR`` lease lengths after it was taken (D46). A lease that ran out is
    renewed too while nobody else holds the case; one marked expired is not (410).

    Refusals as for a verdict: closed (409), not yours (409), expired (410), 404.
    """
    workflow = review_task_for_reviewer(task_id=task_id, reviewer=reviewer).workflow
    now = timezone.now()
    with transaction.atomic():
        task, case = _task_and_case_lock(task_id)
        assignment = _lease_of(task=task, case=case, reviewer=reviewer, now=now)
        if assignment.state != AssignmentState.ACTIVE:
            raise LeaseExpired(
                f"your lease on review task {task.pk} ran out; give your verdict, or take "
                "the next case"
            )
        _lease_renew(assignment=assignment, workflow=workflow, now=now)
    return assignment


def verdict_skip(*, task_id: int, reviewer: User, reason: str) -> Assignment:
    """Hand a leased task back with a reason (D48). The task waits
    ``workflow.skip_delay_seconds`` before anyone is offered it again, then goes to other
    reviewers before this one; at ``workflow.max_skips`` skips (0: never) it goes to the
    workflow's admins (``escalated``). A skipped gold task is cancelled."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason: say why you skip this case", field="reason")
    if len(reason) > MAX_SKIP_REASON_LENGTH:
        raise InvalidInput(f"reason: at most {MAX_SKIP_REASON_LENGTH} characters", field="reason")
    workflow = review_task_for_reviewer(task_id=task_id, reviewer=reviewer).workflow
    now = timezone.now()
    with transaction.atomic():
        task, case = _task_and_case_lock(task_id)
        assignment = _lease_of(task=task, case=case, reviewer=reviewer, now=now)
        assignment_end(
            assignment=assignment, to_state=AssignmentState.SKIPPED, now=now, skip_reason=reason
        )
        if task.kind == TaskKind.GOLD:
            review_task_transition(
                task=task,
                to_status=TaskStatus.CANCELLED,
                actor_type=ActorType.USER,
                actor=reviewer,
                reason=f"the reviewer skipped this gold case: {reason}",
            )
        else:
            task.skip_count += 1
            task.available_at = now + timedelta(seconds=workflow.skip_delay_seconds)
            escalate = (
                not task.escalated
                and workflow.max_skips > 0
                and task.skip_count >= workflow.max_skips
            )
            task.escalated = task.escalated or escalate
            task.save(update_fields=["skip_count", "available_at", "escalated"])
            case_event_record(
                case=case,
                kind="review_skipped",
                actor_type=ActorType.USER,
                actor=reviewer,
                reason=reason,
                data={
                    "task": task.pk,
                    "skips": task.skip_count,
                    "back_at": task.available_at.isoformat(),
                },
            )
            if escalate:
                case_event_record(
                    case=case,
                    kind="review_escalated",
                    actor_type=ActorType.SYSTEM,
                    reason=f"skipped {task.skip_count} times: sent to the workflow's admins",
                    data={"task": task.pk, "skips": task.skip_count},
                )
    return assignment


def assignment_release(*, task_id: int, reviewer: User) -> bool:
    """Give back a lease without a verdict (a prefetched case, a closed page).

    Unlike a skip, the reviewer may be offered the task again. Idempotent: returns
    False when the reviewer held no live lease on the task.
    """
    review_task_for_reviewer(task_id=task_id, reviewer=reviewer)
    now = timezone.now()
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(pk=task_id)
        released = assignments_end(
            leases=task.assignments.filter(reviewer=reviewer, expires_at__gt=now),
            to_state=AssignmentState.RELEASED,
            now=now,
        )
        if released and task.kind == TaskKind.GOLD and task.status == TaskStatus.OPEN:
            review_task_transition(
                task=task,
                to_status=TaskStatus.CANCELLED,
                actor_type=ActorType.USER,
                actor=reviewer,
                reason="the reviewer gave this gold case back",
            )
    return bool(released)


# --- Undo ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UndoResult:
    """The retracted verdict, and the lease that hands its case back to the reviewer
    (None when another reviewer holds the case by now: it waits in the queue)."""

    verdict: Verdict
    assignment: Assignment | None


def verdict_undo(*, reviewer: User, verdict_id: int) -> UndoResult:
    """Retract the reviewer's last verdict in its workflow, within the undo window.

    The verdict is kept, marked retracted. A case it decided goes back to ``in_review``
    with its decision cleared; the task reopens and is leased back to the reviewer.
    Refused (409) when it is not the reviewer's last verdict, was already undone, or
    someone acted on the case after it; (410) once the window has passed.
    """
    verdict = (
        Verdict.objects.select_related("task__workflow")
        .filter(pk=verdict_id, reviewer=reviewer)
        .first()
    )
    if verdict is None:
        raise NotFound(f"verdict {verdict_id} not found")
    workflow = verdict.task.workflow
    try:
        access_review(reviewer, workflow)
    except NotFound as exc:
        raise NotFound(f"verdict {verdict_id} not found") from exc
    window = settings.LOOPGATE_UNDO_WINDOW_SECONDS
    now = timezone.now()
    if verdict.retracted_at is not None:
        raise AlreadyUndone(f"verdict {verdict_id} was already undone")
    if now - verdict.created_at > timedelta(seconds=window):
        raise UndoWindowPassed(
            f"verdict {verdict_id} can no longer be undone: the undo window is {window} s"
        )
    last = (
        Verdict.objects.filter(reviewer=reviewer, task__workflow=workflow)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    if last != verdict.pk:
        raise NotLastVerdict("only your last verdict in this workflow can be undone")

    with transaction.atomic():
        task, case = _task_and_case_lock(verdict.task_id)
        verdict = Verdict.objects.select_related("reviewer").get(pk=verdict.pk)
        if verdict.retracted_at is not None:
            raise AlreadyUndone(f"verdict {verdict_id} was already undone")
        acted_after = (
            # Ids are the order a task's verdicts were given (each under the task's lock).
            task.verdicts.filter(retracted_at__isnull=True, pk__gt=verdict.pk).exists()
        )
        if acted_after or task.status == TaskStatus.CANCELLED:
            raise CaseMovedOn(
                f"another reviewer has given a verdict on case {case.id} since; it cannot be undone"
            )
        if task.kind == TaskKind.REVIEW:
            _review_verdict_retract(
                task=task, case=case, verdict=verdict, reviewer=reviewer, now=now
            )
        elif task.kind == TaskKind.AUDIT:
            _audit_verdict_retract(
                task=task, case=case, verdict=verdict, reviewer=reviewer, now=now
            )
        else:
            verdict.retracted_at = now
            verdict.save(update_fields=["retracted_at"])
            _task_reopen(task=task, case=case, reviewer=reviewer, verdict=verdict)
        assignment = None
        live_lease = task.assignments.filter(
            state=AssignmentState.ACTIVE, expires_at__gt=now
        ).exists()
        if not live_lease:
            assignment = _lease_create(task=task, reviewer=reviewer, now=now)
    return UndoResult(verdict=verdict, assignment=assignment)


def _task_reopen(*, task: ReviewTask, case: Case, reviewer: Any, verdict: Verdict) -> None:
    """Reopen the task ``verdict`` closed. Hold the task's and the case's locks."""
    if task.status == TaskStatus.OPEN:
        return
    try:
        with transaction.atomic():
            review_task_transition(
                task=task,
                to_status=TaskStatus.OPEN,
                actor_type=ActorType.USER,
                actor=reviewer,
                reason=f"{reviewer.get_username()} undid their verdict",
                data={"verdict": verdict.pk},
            )
    except IntegrityError as exc:
        raise CaseMovedOn(f"case {case.id} is in the queue again by another route") from exc


def _review_verdict_retract(
    *, task: ReviewTask, case: Case, verdict: Verdict, reviewer: User, now: datetime
) -> None:
    if task.status == TaskStatus.DONE:
        decided_by_this = (
            case.status == CaseStatus.DECIDED
            and case.decision_source == DecisionSource.HUMAN
            and case.decided_by_id == reviewer.pk
        )
        if not decided_by_this:
            raise CaseMovedOn(f"case {case.id} was decided again by someone else since")
        previous_label = case.decision_label
        case.decision_label = ""
        case.decision_source = ""
        case.decision_confidence = None
        case.decision_model_version = None
        case.decided_by = None
        case.decided_at = None
        case.human_label = ""
        case.labelled_at = None
        case.save(
            update_fields=[
                "decision_label",
                "decision_source",
                "decision_confidence",
                "decision_model_version",
                "decided_by",
                "decided_at",
                "human_label",
                "labelled_at",
                "updated_at",
            ]
        )
        case_transition(
            case=case,
            to_status=CaseStatus.IN_REVIEW,
            actor_type=ActorType.USER,
            actor=reviewer,
            reason=f"{reviewer.get_username()} undid the verdict that decided the case",
            data={"undone_label": previous_label, "verdict": verdict.pk, "task": task.pk},
        )
        _task_reopen(task=task, case=case, reviewer=reviewer, verdict=verdict)
    verdict.retracted_at = now
    verdict.save(update_fields=["retracted_at"])
    remaining = [v.label for v in _standing_verdicts(task)]
    state = consensus_state(remaining, agreement_required=task.agreement_required)
    task.verdicts_required = state.verdicts_required
    task.needs_adjudication = state.needs_adjudication
    task.save(update_fields=["verdicts_required", "needs_adjudication"])


def _audit_verdict_retract(
    *, task: ReviewTask, case: Case, verdict: Verdict, reviewer: User, now: datetime
) -> None:
    if case.human_label == verdict.label:
        case.human_label = ""
        case.labelled_at = None
        case.save(update_fields=["human_label", "labelled_at", "updated_at"])
    case_event_record(
        case=case,
        kind="audit_label_undone",
        actor_type=ActorType.USER,
        actor=reviewer,
        reason=f"{reviewer.get_username()} undid their audit label",
        data={"undone_label": verdict.label, "verdict": verdict.pk, "task": task.pk},
    )
    verdict.retracted_at = now
    verdict.save(update_fields=["retracted_at"])
    _task_reopen(task=task, case=case, reviewer=reviewer, verdict=verdict)


# --- Changing an older verdict ----------------------------------------------------------


def verdict_change_request(
    *, reviewer: User, verdict_id: int, label: str, reason: str
) -> CaseEvent:
    """Ask the workflow's admins to change one of the reviewer's own verdicts to
    ``label`` (D53): for a verdict past the undo window, or one that Undo cannot reach.

    Recorded on the case's event trail (``verdict_change_requested``, with the verdict,
    both labels and the reason), which the admins read in ``review/stats``; the verdict
    itself stays as it is until an admin acts. One request per verdict (409 after).
    """
    verdict = (
        Verdict.objects.select_related("task__workflow")
        .filter(pk=verdict_id, reviewer=reviewer)
        .first()
    )
    if verdict is None:
        raise NotFound(f"verdict {verdict_id} not found")
    workflow = verdict.task.workflow
    try:
        access_review(reviewer, workflow)
    except NotFound as exc:
        raise NotFound(f"verdict {verdict_id} not found") from exc
    label = _label_check(workflow, label)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason: say why the verdict should change", field="reason")
    if len(reason) > MAX_CHANGE_REASON_LENGTH:
        raise InvalidInput(f"reason: at most {MAX_CHANGE_REASON_LENGTH} characters", field="reason")
    if verdict.retracted_at is not None:
        raise AlreadyUndone(f"verdict {verdict_id} was undone; there is nothing to change")
    if label == verdict.label:
        raise InvalidInput(f"label: the verdict is already {label!r}", field="label")
    with transaction.atomic():
        task, case = _task_and_case_lock(verdict.task_id)
        if CaseEvent.objects.filter(
            case=case, kind=CHANGE_REQUEST_EVENT, data__verdict=verdict.pk
        ).exists():
            raise ChangeAlreadyRequested(f"a change of verdict {verdict_id} was already requested")
        return case_event_record(
            case=case,
            kind=CHANGE_REQUEST_EVENT,
            actor_type=ActorType.USER,
            actor=reviewer,
            reason=reason,
            data={
                "verdict": verdict.pk,
                "task": task.pk,
                "from_label": verdict.label,
                "to_label": label,
            },
        )


def verdict_change_decide(*, admin: User, verdict_id: int, decision: str, reason: str) -> CaseEvent:
    """A workflow admin's answer to a reviewer's change request (D92): ``accept`` or
    ``decline``, with a reason. Returns the ``verdict_change_decided`` event.

    Accepting relabels the verdict (the old label stays on the event trail: who, when,
    why, from, to) and the case follows as it would have had the verdict carried the new
    label from the start:

    * review task, case decided: the consensus rule is replayed on the standing
      verdicts. Still decided: the case's ``decision_label`` and ``human_label`` follow
      the new outcome (``decision_changed`` event; the case stays ``decided``, its
      ``decided_at`` too). No longer decided: the case goes back to ``in_review`` with
      its decision cleared and the task reopens for the verdicts the rule now needs.
    * review task still open: the rule is replayed; it may now decide the case, or send
      it to adjudication, with the admin as the actor.
    * audit task: the case's ``human_label`` (the label accuracy is measured on) follows,
      and the automation checks run again on it; the model's decision stands.
    * gold task: only the verdict changes (the reviewer's gold accuracy with it).

    Refusals: not a member (404), a member but not an admin (403), no request (404),
    already decided (409), the verdict undone or changed since (409), the case moved on
    by another route (409); bad ``decision`` or ``reason`` (400).
    """
    verdict = Verdict.objects.select_related("task__workflow").filter(pk=verdict_id).first()
    if verdict is None:
        raise NotFound(f"verdict {verdict_id} not found")
    workflow = verdict.task.workflow
    try:
        access_workflow(admin, workflow.slug, "can_admin")
    except NotFound as exc:
        raise NotFound(f"verdict {verdict_id} not found") from exc
    if decision not in CHANGE_DECISIONS:
        raise InvalidInput("decision: accept or decline", field="decision")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason: say why", field="reason")
    if len(reason) > MAX_CHANGE_REASON_LENGTH:
        raise InvalidInput(f"reason: at most {MAX_CHANGE_REASON_LENGTH} characters", field="reason")
    now = timezone.now()
    with transaction.atomic():
        task, case = _task_and_case_lock(verdict.task_id)
        request = (
            CaseEvent.objects.filter(case=case, kind=CHANGE_REQUEST_EVENT, data__verdict=verdict.pk)
            .select_related("actor")
            .first()
        )
        if request is None:
            raise NoChangeRequested(f"no change of verdict {verdict_id} was requested")
        if CaseEvent.objects.filter(
            case=case, kind=CHANGE_DECISION_EVENT, data__verdict=verdict.pk
        ).exists():
            raise ChangeAlreadyDecided(f"the change of verdict {verdict_id} was already decided")
        verdict = Verdict.objects.select_related("reviewer").get(pk=verdict.pk)
        from_label = request.data.get("from_label", "")
        to_label = request.data.get("to_label", "")
        if decision == "accept":
            if verdict.retracted_at is not None:
                raise AlreadyUndone(f"verdict {verdict_id} was undone since; decline the request")
            if verdict.label != from_label:
                raise CaseMovedOn(f"verdict {verdict_id} is no longer {from_label!r}")
            _label_check(workflow, to_label)
        event = case_event_record(
            case=case,
            kind=CHANGE_DECISION_EVENT,
            actor_type=ActorType.USER,
            actor=admin,
            reason=reason,
            data={
                "verdict": verdict.pk,
                "task": task.pk,
                "request": request.pk,
                "decision": decision,
                "from_label": from_label,
                "to_label": to_label,
                "requested_by": request.actor.get_username() if request.actor else "",
            },
        )
        if decision == "accept":
            verdict.label = to_label
            verdict.save(update_fields=["label"])
            _verdict_change_apply(task=task, case=case, verdict=verdict, admin=admin, now=now)
    return event


def _verdict_change_apply(
    *, task: ReviewTask, case: Case, verdict: Verdict, admin: User, now: datetime
) -> None:
    """Make the case follow a relabelled verdict. Hold the task's and the case's locks."""
    if task.kind == TaskKind.AUDIT:
        if case.human_label != verdict.label:
            previous = case.human_label
            case.human_label = verdict.label
            case.save(update_fields=["human_label", "updated_at"])
            case_event_record(
                case=case,
                kind="audit_label_changed",
                actor_type=ActorType.USER,
                actor=admin,
                reason="an accepted change request relabelled the audit",
                data={
                    "from_label": previous,
                    "label": verdict.label,
                    "model_label": case.decision_label,
                    "agrees_with_model": verdict.label == case.decision_label,
                    "verdict": verdict.pk,
                },
            )
            audit_label_recorded(workflow_id=task.workflow_id)
        return
    if task.kind != TaskKind.REVIEW:
        return
    if task.status == TaskStatus.OPEN:
        _review_task_settle(task=task, case=case, reviewer=admin, now=now)
        return
    if not (case.status == CaseStatus.DECIDED and case.decision_source == DecisionSource.HUMAN):
        raise CaseMovedOn(f"case {case.id} was decided by another route since")
    verdicts = _standing_verdicts(task)
    state = consensus_state([v.label for v in verdicts], agreement_required=task.agreement_required)
    task.verdicts_required = state.verdicts_required
    task.needs_adjudication = state.needs_adjudication
    task.save(update_fields=["verdicts_required", "needs_adjudication"])
    previous = case.decision_label
    if state.decided:
        if state.label != previous:
            case.decision_label = state.label or ""
            case.human_label = state.label or ""
            case.save(update_fields=["decision_label", "human_label", "updated_at"])
            case_event_record(
                case=case,
                kind="decision_changed",
                actor_type=ActorType.USER,
                actor=admin,
                reason="an accepted change request changed the verdicts' outcome",
                data={"from_label": previous, "label": state.label, "verdict": verdict.pk},
            )
        return
    case.decision_label = ""
    case.decision_source = ""
    case.decided_by = None
    case.decided_at = None
    case.human_label = ""
    case.labelled_at = None
    case.save(
        update_fields=[
            "decision_label",
            "decision_source",
            "decided_by",
            "decided_at",
            "human_label",
            "labelled_at",
            "updated_at",
        ]
    )
    case_transition(
        case=case,
        to_status=CaseStatus.IN_REVIEW,
        actor_type=ActorType.USER,
        actor=admin,
        reason="an accepted change request left the verdicts without a consensus",
        data={"undone_label": previous, "verdict": verdict.pk, "task": task.pk},
    )
    try:
        with transaction.atomic():
            review_task_transition(
                task=task,
                to_status=TaskStatus.OPEN,
                actor_type=ActorType.USER,
                actor=admin,
                reason="an accepted change request left the verdicts without a consensus",
                data={"verdict": verdict.pk},
            )
    except IntegrityError as exc:
        raise CaseMovedOn(f"case {case.id} is in the queue again by another route") from exc
