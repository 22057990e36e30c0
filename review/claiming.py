"""The review claim's statement: which task a reviewer gets next, in one query.

Written as SQL, not through the ORM: the claim runs on every ``review/next`` and the
ORM's compilation of the same query cost several times its execution (D135). Table
and column names come from the models' metadata and constants; every value is a
parameter, except the ids of tasks this claim already tried, which are integers of
our own.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.db import connections, router
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from accounts.types import User
from kernel.prepared import Prepared
from review.models import Assignment, AssignmentState, ReviewTask, TaskKind, TaskStatus, Verdict
from review.selectors import CLAIM_RELATED, SHARED_QUEUE
from workflows.models import Case, CaseStatus, Workflow

_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


def _claimable_where(alias: str, *, queue: str, own_skips: bool, tried: str) -> str:
    """The SQL condition a task row ``alias`` meets when ``claim_sql``'s reviewer may take
    it now. Parameters by name: ``workflow``, ``reviewer``, ``now``."""
    task = alias
    assignment = Assignment._meta.db_table
    verdict = Verdict._meta.db_table
    if queue == "adjudication":
        in_queue = f"{task}.needs_adjudication"
    elif queue == "escalated":
        in_queue = f"NOT {task}.needs_adjudication AND {task}.escalated"
    else:
        in_queue = f"NOT {task}.needs_adjudication AND NOT {task}.escalated"
    skipped = (
        f"EXISTS (SELECT 1 FROM {assignment} s WHERE s.task_id = {task}.id"
        f" AND s.reviewer_id = %(reviewer)s AND s.state = '{AssignmentState.SKIPPED}')"
    )
    return (
        f"{task}.workflow_id = %(workflow)s AND {task}.status = '{TaskStatus.OPEN}'"
        f" AND {task}.kind <> '{TaskKind.GOLD}' AND {in_queue}"
        f" AND ({task}.available_at IS NULL OR {task}.available_at <= %(now)s)"
        f" AND NOT EXISTS (SELECT 1 FROM {assignment} l WHERE l.task_id = {task}.id"
        f" AND l.state = '{AssignmentState.ACTIVE}' AND l.expires_at > %(now)s)"
        f" AND NOT EXISTS (SELECT 1 FROM {verdict} v WHERE v.task_id = {task}.id"
        f" AND v.reviewer_id = %(reviewer)s AND v.retracted_at IS NULL)"
        f" AND {'' if own_skips else 'NOT '}{skipped}"
        + (f" AND {task}.id NOT IN ({tried})" if tried else "")
    )


def claim_sql(
    *,
    workflow: Workflow,
    reviewer: User,
    now: Any,
    queue: str = SHARED_QUEUE,
    own_skips: bool = False,
    tried: list[int] | tuple[int, ...] = (),
    using: str = "default",
) -> tuple[str, list[Any]]:
    """One statement selecting the id of the task to hand ``reviewer`` next, locked on
    PostgreSQL (``FOR UPDATE SKIP LOCKED``: a task someone is claiming right now is passed
    over). This is the one definition of a claimable task: open, shared (not gold), in
    ``queue`` (``shared``: everyone's; ``adjudication``: reviewers disagreed; ``escalated``:
    skipped too often), past its ``available_at`` (D48), no live lease on it, no standing
    verdict of this reviewer (consensus needs different people), and skipped by this
    reviewer only when ``own_skips`` asks for those; not among ``tried``.

    Which: the nearest pending deadline of a case in review first (equal deadlines by
    the case's arrival), then the oldest task (D102). Each part walks an index in order
    and stops at the first task that qualifies, whatever the table statistics say
    (D135): pending deadlines from the partial index ``case_deadline_queue`` (cases in
    review only: a decided case leaves it, so it never holds the history), each case
    probing its one open task (a LATERAL subquery fenced with OFFSET 0, so the planner
    cannot turn it into a scan of every open task); then the task queue's own partial
    index in (created_at, id) order. The first part that finds a task ends the
    statement (UNION ALL … LIMIT 1): the second locks nothing then. A case whose deadline
    fallback has run waits in arrival order like any other.
    """
    connection = connections[using]
    return _claim_sql(
        workflow_id=workflow.pk,
        reviewer_id=reviewer.pk,
        now=connection.ops.adapt_datetimefield_value(now),
        queue=queue,
        own_skips=own_skips,
        tried=tried,
        using=using,
    )


def _claim_sql(
    *,
    workflow_id: int,
    reviewer_id: int,
    now: Any,
    queue: str,
    own_skips: bool,
    tried: list[int] | tuple[int, ...],
    using: str,
) -> tuple[str, list[Any]]:
    """``claim_sql`` with the ids, and ``now`` adapted for the database."""
    task = ReviewTask._meta.db_table
    case = Case._meta.db_table
    connection = connections[using]
    postgres = connection.vendor == "postgresql"
    lock = " FOR UPDATE OF t SKIP LOCKED" if postgres else ""
    # Ids of our own earlier picks, never user input: written into the statement.
    listed = ", ".join(str(int(pk)) for pk in tried)

    def claimable(alias: str) -> str:
        return _claimable_where(alias, queue=queue, own_skips=own_skips, tried=listed)

    # The condition of the partial index case_deadline_queue: cases still in review with
    # a deadline whose fallback has not run (a decided case leaves it).
    pending = (
        "c.workflow_id = %(workflow)s AND c.deadline_at IS NOT NULL"
        f" AND c.deadline_fallback_at IS NULL AND c.status = '{CaseStatus.IN_REVIEW}'"
    )
    if postgres:
        # The lock is the probe's own (a lock on a subquery is taken inside it), so no
        # row may reach it that is not handed out: the cases come in the claim's whole
        # order straight from the index, with no sort above to read ahead, and the
        # limit stops at the first task locked (D135).
        due = (
            f"SELECT t.id FROM {case} c CROSS JOIN LATERAL (SELECT t0.id"
            f" FROM {task} t0 WHERE t0.case_id = c.id AND {claimable('t0')} OFFSET 0) t"
            f" WHERE {pending} ORDER BY c.deadline_at, c.created_at, c.id LIMIT 1{lock}"
        )
    else:
        due = (
            f"SELECT t.id FROM {case} c JOIN {task} t ON t.case_id = c.id"
            f" WHERE {pending} AND {claimable('t')}"
            " ORDER BY c.deadline_at, c.created_at, c.id LIMIT 1"
        )
    oldest = (
        f"SELECT t.id FROM {task} t WHERE {claimable('t')}"
        f" ORDER BY t.created_at, t.id LIMIT 1{lock}"
    )
    named = {"workflow": workflow_id, "reviewer": reviewer_id, "now": now}
    sql = f"SELECT id FROM ({due}) due UNION ALL SELECT id FROM ({oldest}) oldest LIMIT 1"
    # Positional parameters, so the statement can sit inside an ORM query (RawSQL).
    params = [named[name] for name in _NAMED_PARAMETER.findall(sql)]
    return _NAMED_PARAMETER.sub("%s", sql), params


def _claim_queryset(
    *,
    workflow_id: int,
    reviewer_id: int,
    now: Any,
    queue: str,
    own_skips: bool,
    tried: list[int] | tuple[int, ...],
    using: str,
) -> QuerySet[ReviewTask]:
    """The claim's task with what the payload shows, and whether a lease on it lapsed."""
    pick, params = _claim_sql(
        workflow_id=workflow_id,
        reviewer_id=reviewer_id,
        now=now,
        queue=queue,
        own_skips=own_skips,
        tried=tried,
        using=using,
    )
    lapsed = (
        f"EXISTS (SELECT 1 FROM {Assignment._meta.db_table} a"
        f" WHERE a.task_id = {ReviewTask._meta.db_table}.id"
        f" AND a.state = '{AssignmentState.ACTIVE}' AND a.expires_at <= %s)"
    )
    return (
        ReviewTask.objects.using(using)
        .select_related(*CLAIM_RELATED)
        .annotate(lapsed=RawSQL(lapsed, [now], output_field=BooleanField()))
        .filter(pk__in=RawSQL(pick, params))
        .order_by("pk")[:1]
    )


# The claim compiled once per queue, own-skips choice and database (D141); a claim that
# passes over tasks it already tried (their ids are in its SQL) is compiled each time.
_prepared: dict[tuple[str, bool, str], Prepared[ReviewTask]] = {}
_MARKER_NOW = datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


def _claim_prepared(*, queue: str, own_skips: bool, using: str) -> Prepared[ReviewTask]:
    key = (queue, own_skips, using)
    prepared = _prepared.get(key)
    if prepared is None:

        def build(workflow_id: int, reviewer_id: int, now: datetime) -> QuerySet[ReviewTask]:
            return _claim_queryset(
                workflow_id=workflow_id,
                reviewer_id=reviewer_id,
                now=connections[using].ops.adapt_datetimefield_value(now),
                queue=queue,
                own_skips=own_skips,
                tried=(),
                using=using,
            )

        prepared = _prepared.setdefault(
            key,
            Prepared(
                ReviewTask,
                build,
                workflow_id=-7_000_011,
                reviewer_id=-7_000_012,
                now=_MARKER_NOW,
            ),
        )
    return prepared


def task_claim(
    *,
    workflow: Workflow,
    reviewer: User,
    now: datetime,
    queue: str,
    own_skips: bool,
    tried: list[int],
) -> tuple[ReviewTask, bool] | None:
    """The task to hand out next (``claim_sql``), locked on PostgreSQL, with what the
    payload shows (its case, the deciding prediction and its version), and whether an
    active lease on it ran out and must be ended before a new one: one statement. None
    when nothing is claimable. Call inside the claim's transaction."""
    using = router.db_for_write(ReviewTask)
    adapted_now = connections[using].ops.adapt_datetimefield_value(now)
    if tried:
        task = _claim_queryset(
            workflow_id=workflow.pk,
            reviewer_id=reviewer.pk,
            now=adapted_now,
            queue=queue,
            own_skips=own_skips,
            tried=tried,
            using=using,
        ).first()
    else:
        task = _claim_prepared(queue=queue, own_skips=own_skips, using=using).first(
            using=using, workflow_id=workflow.pk, reviewer_id=reviewer.pk, now=now
        )
    if task is None:
        return None
    return task, bool(vars(task)["lapsed"])
