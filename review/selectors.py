"""Reads for the review queue: what a reviewer sees, queue summaries, agreement stats.

What a reviewer may see of a case is decided here, in ``review_task_payload``: the
model's suggestion is included only when the task allows it (never in shadow mode,
never on an audit or a gold case), and nothing else in the payload carries it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Min,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncDay, TruncWeek
from django.urls import reverse
from django.utils import timezone

from accounts.types import User
from decisions.stats import (
    clopper_pearson,
    cohen_kappa,
    cohen_kappa_from_pairs,
    fleiss_kappa,
    percent_agreement,
)
from review.models import Assignment, AssignmentState, ReviewTask, TaskKind, TaskStatus, Verdict
from workflows.access import has_right, review_task_visibility, workflows_reviewable
from workflows.labels import label_keys
from workflows.models import Case, CaseEvent, Prediction, Workflow, WorkflowMembership

RECENT_VERDICTS_LIMIT = 20
AGREEMENT_VERDICTS_LIMIT = 50_000
# A lease renews (review/next handing it back, the screen's heartbeat) up to this many
# times its workflow's lease length after it was taken; then it runs out (D46).
LEASE_MAX_FACTOR = 8


def lease_limit(*, workflow: Workflow, leased_at: Any) -> Any:
    """The latest a lease taken at ``leased_at`` may be renewed to (D46)."""
    return leased_at + timedelta(seconds=workflow.review_lease_seconds * LEASE_MAX_FACTOR)


def screen_labels(workflow: Workflow) -> list[dict[str, Any]]:
    """The workflow's labels as the review screen shows them: each with its keys (from
    ``workflows.labels.label_keys`` and the workflow's settings) and colour."""
    return [
        {"label": key.label, "keys": list(key.keys), "key": key.primary, "color": key.color}
        for key in label_keys(list(workflow.labels), workflow.label_settings or {})
    ]


# --- The queue: what may be claimed, and the counts everyone sees ----------------------


SHARED_QUEUE = "shared"
# Admins' queues, served to them first: disagreements, then cases skipped too often.
ADMIN_QUEUES = ("adjudication", "escalated")


def queue_counts(*, workflows: list[Workflow], user: User) -> dict[int, dict[str, Any]]:
    """Per workflow, the open shared tasks as the queue page and the review screen both
    show them (one query): ``open`` in all; ``available`` to take now (for the user: an
    admin counts the admins' queue too); ``leased`` under a live lease; ``cooling``
    skipped, back at ``next_back_at``; ``escalated`` with the admins after too many skips;
    ``needs_adjudication``; ``answered`` waiting for someone other than the user;
    ``oldest_age_seconds`` of the oldest open task."""
    now = timezone.now()
    live_lease = Exists(
        Assignment.objects.filter(
            task=OuterRef("pk"), state=AssignmentState.ACTIVE, expires_at__gt=now
        )
    )
    own_verdict = Exists(
        Verdict.objects.filter(task=OuterRef("pk"), reviewer=user, retracted_at__isnull=True)
    )
    cooling = Q(available_at__gt=now)
    to_admins = Q(needs_adjudication=True) | Q(escalated=True)
    rows = (
        ReviewTask.objects.filter(workflow__in=[w.pk for w in workflows], status=TaskStatus.OPEN)
        .exclude(kind=TaskKind.GOLD)
        .annotate(leased=live_lease, answered=own_verdict)
        .values("workflow_id")
        .annotate(
            open=Count("id"),
            oldest=Min("created_at"),
            leased_n=Count("id", filter=Q(leased=True)),
            cooling_n=Count("id", filter=cooling & Q(leased=False)),
            next_back_at=Min("available_at", filter=cooling),
            escalated_n=Count("id", filter=Q(escalated=True)),
            adjudication=Count("id", filter=Q(needs_adjudication=True)),
            answered_n=Count("id", filter=Q(answered=True) & Q(leased=False) & ~cooling),
            free_all=Count("id", filter=Q(leased=False) & ~cooling & Q(answered=False)),
            free_shared=Count(
                "id", filter=Q(leased=False) & ~cooling & Q(answered=False) & ~to_admins
            ),
        )
    )
    by_workflow: dict[int, dict[str, Any]] = {r["workflow_id"]: dict(r) for r in rows}
    counts: dict[int, dict[str, Any]] = {}
    for workflow in workflows:
        row: dict[str, Any] = by_workflow.get(workflow.pk, {})
        admin = has_right(user, workflow, "can_admin")
        counts[workflow.pk] = {
            "open": row.get("open", 0),
            "available": row.get("free_all" if admin else "free_shared", 0),
            "leased": row.get("leased_n", 0),
            "cooling": row.get("cooling_n", 0),
            "next_back_at": row.get("next_back_at"),
            "escalated": row.get("escalated_n", 0),
            "needs_adjudication": row.get("adjudication", 0),
            "answered": row.get("answered_n", 0),
            "oldest_age_seconds": _age_seconds(row.get("oldest"), now),
            "is_admin": admin,
        }
    return counts


def case_image_url(case_id: Any) -> str:
    return reverse("case-image", args=[str(case_id)])


def _suggestion_of(case: Case) -> dict[str, Any] | None:
    prediction = case.deciding_prediction
    if prediction is None:
        predictions = Prediction.objects.filter(case=case).select_related("model_version")
        prediction = predictions.filter(role="serving").first() or predictions.first()
    if prediction is None:
        return None
    return {
        "label": prediction.label,
        "confidence": prediction.confidence,
        "scores": prediction.scores,
        "model_version": prediction.model_version.tag,
    }


# What review_task_payload reads of an assignment's task. The claim
# (review.claiming.task_claim) loads CLAIM_RELATED with the task and sets the workflow it
# already holds, which saves the payload a query.
CLAIM_RELATED = ("case", "case__deciding_prediction__model_version")
PAYLOAD_RELATED = ("workflow", *CLAIM_RELATED)


def _payload_loaded(assignment: Assignment) -> bool:
    if not Assignment.task.is_cached(assignment):
        return False
    task = assignment.task
    return ReviewTask.workflow.is_cached(task) and ReviewTask.case.is_cached(task)


def review_task_payload(*, assignment: Assignment) -> dict[str, Any]:
    """What the reviewer holding ``assignment`` sees: the case, the labels, the lease.

    ``suggestion`` is present only when ``workflows.access.review_task_visibility``
    allows the predictions; the key is absent otherwise, and no other field carries a
    prediction. The task's kind is not shown:
    gold and audit cases look like the rest of the queue.
    """
    task = assignment.task if _payload_loaded(assignment) else None
    if task is None:
        task = ReviewTask.objects.select_related(*PAYLOAD_RELATED).get(pk=assignment.task_id)
    case = task.case
    workflow = task.workflow
    now = timezone.now()
    payload: dict[str, Any] = {
        "id": task.pk,
        "workflow": workflow.slug,
        "reason": task.reason,
        "leased_at": assignment.leased_at,
        "expires_at": assignment.expires_at,
        "now": now,
        "seconds_left": max(0.0, (assignment.expires_at - now).total_seconds()),
        "lease_seconds": workflow.review_lease_seconds,
        "case": {
            "id": case.id,
            "external_id": case.external_id,
            "image_url": case_image_url(case.id),
            "image": {
                "format": case.image_format,
                "width": case.image_width,
                "height": case.image_height,
            },
            "metadata": case.metadata,
            "created_at": case.created_at,
        },
        "labels": screen_labels(workflow),
        "adjudication": task.needs_adjudication,
        "escalated": task.escalated,
        "skip_count": task.skip_count,
    }
    if task.needs_adjudication:
        payload["previous_verdicts"] = [
            {"reviewer": reviewer, "label": label, "comment": comment}
            for reviewer, label, comment in task.verdicts.filter(retracted_at__isnull=True)
            .order_by("created_at", "id")
            .values_list("reviewer__username", "label", "comment")
        ]
    visibility = review_task_visibility(
        show_suggestion=task.show_suggestion,
        blind_kind=task.kind in (TaskKind.GOLD, TaskKind.AUDIT),
    )
    if visibility.predictions:
        suggestion = _suggestion_of(case)
        if suggestion is not None:
            payload["suggestion"] = suggestion
    return payload


def _age_seconds(moment: Any, now: Any) -> float | None:
    return (now - moment).total_seconds() if moment else None


def review_queues(*, user: User) -> list[dict[str, Any]]:
    """The workflows ``user`` may review, each with the counts of ``queue_counts`` (the
    same the review screen shows when nothing is left to take). An archived workflow is
    left out: it takes no new cases, and its page is reached from its settings."""
    workflows = list(workflows_reviewable(user).filter(archived_at__isnull=True).order_by("slug"))
    counts = queue_counts(workflows=workflows, user=user)
    return [{"workflow": workflow, **counts[workflow.pk]} for workflow in workflows]


def escalated_tasks(*, workflow: Workflow, limit: int = 50) -> list[dict[str, Any]]:
    """Open tasks sent to the workflow's admins after too many skips, with the reasons."""
    tasks = list(
        ReviewTask.objects.filter(workflow=workflow, status=TaskStatus.OPEN, escalated=True)
        .select_related("case")
        .order_by("created_at", "id")[:limit]
    )
    reasons: dict[int, list[str]] = defaultdict(list)
    for task_id, reason in Assignment.objects.filter(
        task__in=tasks, state=AssignmentState.SKIPPED
    ).values_list("task_id", "skip_reason"):
        reasons[task_id].append(reason)
    return [
        {
            "task": task.pk,
            "case": task.case_id,
            "external_id": task.case.external_id,
            "skip_count": task.skip_count,
            "skip_reasons": reasons[task.pk],
        }
        for task in tasks
    ]


def verdicts_recent(
    *, workflow: Workflow, reviewer: User, limit: int = RECENT_VERDICTS_LIMIT
) -> list[dict[str, Any]]:
    """The reviewer's own latest verdicts in ``workflow``, newest first.

    Only the newest can be undone, within ``LOOPGATE_UNDO_WINDOW_SECONDS``.
    """
    now = timezone.now()
    window = timedelta(seconds=settings.LOOPGATE_UNDO_WINDOW_SECONDS)
    verdicts = list(
        Verdict.objects.filter(reviewer=reviewer, task__workflow=workflow).order_by(
            "-created_at", "-id"
        )[: max(1, min(limit, 100))]
    )
    recent = []
    for position, verdict in enumerate(verdicts):
        undo_until = verdict.created_at + window
        recent.append(
            {
                "id": verdict.pk,
                "task": verdict.task_id,
                "case": verdict.case_id,
                "image_url": case_image_url(verdict.case_id),
                "label": verdict.label,
                "comment": verdict.comment,
                "created_at": verdict.created_at,
                "retracted_at": verdict.retracted_at,
                "undo_until": undo_until,
                "undoable": position == 0 and verdict.retracted_at is None and now < undo_until,
            }
        )
    return recent


def verdicts_history(
    *,
    workflow: Workflow,
    reviewer: User,
    label: str | None = None,
    include_retracted: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """The reviewer's own verdicts in ``workflow``, newest first, a page of them."""
    verdicts = Verdict.objects.filter(reviewer=reviewer, task__workflow=workflow)
    if label:
        verdicts = verdicts.filter(label=label)
    if not include_retracted:
        verdicts = verdicts.filter(retracted_at__isnull=True)
    rows = list(
        verdicts.select_related("case").order_by("-created_at", "-id")[offset : offset + limit]
    )
    changes = _verdict_changes(workflow=workflow, verdicts=[v.pk for v in rows])
    return {
        "count": verdicts.count(),
        "results": [
            {
                "id": v.pk,
                "case": v.case_id,
                "external_id": v.case.external_id,
                "image_url": case_image_url(v.case_id),
                "label": v.label,
                "comment": v.comment,
                "created_at": v.created_at,
                "retracted_at": v.retracted_at,
                "case_status": v.case.status,
                "decision_label": v.case.decision_label,
                "change": changes.get(v.pk),
            }
            for v in rows
        ],
    }


def _verdict_changes(*, workflow: Workflow, verdicts: list[int]) -> dict[int, dict[str, Any]]:
    """The change requests of ``verdicts`` and the admins' answers, by verdict (one query)."""
    if not verdicts:
        return {}
    events = CaseEvent.objects.filter(
        case__workflow=workflow,
        kind__in=("verdict_change_requested", "verdict_change_decided"),
        data__verdict__in=verdicts,
    ).order_by("created_at", "id")
    changes: dict[int, dict[str, Any]] = {}
    for event in events:
        verdict = event.data.get("verdict")
        if event.kind == "verdict_change_requested":
            changes[verdict] = {
                "status": "open",
                "from_label": event.data.get("from_label", ""),
                "to_label": event.data.get("to_label", ""),
                "reason": event.reason,
                "decision_reason": "",
            }
        elif verdict in changes:
            changes[verdict]["status"] = CHANGE_STATUS.get(event.data.get("decision"), "open")
            changes[verdict]["decision_reason"] = event.reason
    return changes


def lease_view(*, assignment: Assignment) -> dict[str, Any]:
    """A lease's end as the screen counts down to it: the server's time left."""
    now = timezone.now()
    workflow = Workflow.objects.only("review_lease_seconds").get(pk=assignment.task.workflow_id)
    return {
        "task": assignment.task_id,
        "expires_at": assignment.expires_at,
        "now": now,
        "seconds_left": max(0.0, (assignment.expires_at - now).total_seconds()),
        "limit_at": lease_limit(workflow=workflow, leased_at=assignment.leased_at),
    }


def verdict_view(*, verdict: Verdict) -> dict[str, Any]:
    """One verdict as the reviewer who gave it sees it."""
    undo_until = verdict.created_at + timedelta(seconds=settings.LOOPGATE_UNDO_WINDOW_SECONDS)
    return {
        "id": verdict.pk,
        "task": verdict.task_id,
        "case": verdict.case_id,
        "image_url": case_image_url(verdict.case_id),
        "label": verdict.label,
        "comment": verdict.comment,
        "created_at": verdict.created_at,
        "retracted_at": verdict.retracted_at,
        "undo_until": undo_until,
        "undoable": verdict.retracted_at is None and timezone.now() < undo_until,
    }


def _kappa(function: Any, *args: Any) -> float | None:
    try:
        return function(*args)
    except (ValueError, ZeroDivisionError):
        return None


def agreement_stats(*, workflow: Workflow) -> dict[str, Any]:
    """Agreement between reviewers on review tasks that got two or more verdicts.

    ``percent_agreement``: the mean share of agreeing verdict pairs per case.
    ``cohen_kappa``: the first against the second verdict of each case (reviewers are a
    pool, so "rater 1" is whoever came first). ``fleiss_kappa``: the first ``raters``
    verdicts of the cases that have that many. Gold and audit tasks are left out.
    """
    rows = (
        Verdict.objects.filter(
            task__workflow=workflow, task__kind=TaskKind.REVIEW, retracted_at__isnull=True
        )
        .order_by("task_id", "created_at", "id")
        .values_list("task_id", "label")[:AGREEMENT_VERDICTS_LIMIT]
    )
    by_task: dict[int, list[str]] = defaultdict(list)
    for task_id, label in rows:
        by_task[task_id].append(label)
    items = [labels for labels in by_task.values() if len(labels) >= 2]
    raters = max(2, workflow.consensus_required)
    fleiss_items = [labels[:raters] for labels in items if len(labels) >= raters]
    return {
        "cases": len(items),
        "percent_agreement": _kappa(percent_agreement, items),
        "cohen_kappa": _kappa(
            cohen_kappa, [labels[0] for labels in items], [labels[1] for labels in items]
        ),
        "fleiss_kappa": _kappa(fleiss_kappa, fleiss_items),
        "fleiss_raters": raters,
        "fleiss_cases": len(fleiss_items),
        "adjudicated": ReviewTask.objects.filter(
            workflow=workflow, kind=TaskKind.REVIEW, needs_adjudication=True
        ).count(),
    }


def gold_accuracy(*, workflow: Workflow, reviewer: User | None = None) -> list[dict[str, Any]]:
    """Each reviewer's accuracy on gold cases, with a 95% Clopper-Pearson interval."""
    verdicts = Verdict.objects.filter(
        task__workflow=workflow, task__kind=TaskKind.GOLD, retracted_at__isnull=True
    )
    if reviewer is not None:
        verdicts = verdicts.filter(reviewer=reviewer)
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for username, label, gold_label in verdicts.values_list(
        "reviewer__username", "label", "case__gold_label"
    ):
        tallies[username][0] += int(label == gold_label)
        tallies[username][1] += 1
    report = []
    for username, (correct, n) in sorted(tallies.items()):
        interval = clopper_pearson(correct, n, 0.95)
        report.append(
            {
                "reviewer": username,
                "n": n,
                "correct": correct,
                "accuracy": correct / n,
                "low": interval.low,
                "high": interval.high,
            }
        )
    return report


def throughput_stats(*, workflow: Workflow, reviewer: User | None = None) -> dict[str, Any]:
    """Verdicts in the last hour and day, and per reviewer the median time per verdict."""
    now = timezone.now()
    day = Verdict.objects.filter(task__workflow=workflow, created_at__gte=now - timedelta(days=1))
    overall = day.aggregate(
        last_24h=Count("id"),
        last_hour=Count("id", filter=Q(created_at__gte=now - timedelta(hours=1))),
    )
    counts: Counter[str] = Counter()
    durations: dict[str, list[float]] = defaultdict(list)
    scoped = day if reviewer is None else day.filter(reviewer=reviewer)
    for username, created_at, leased_at in scoped.values_list(
        "reviewer__username", "created_at", "assignment__leased_at"
    ):
        counts[username] += 1
        if leased_at is not None:
            durations[username].append((created_at - leased_at).total_seconds())
    reviewers = [
        {
            "reviewer": username,
            "verdicts_24h": count,
            "median_seconds_per_verdict": (
                statistics.median(durations[username]) if durations[username] else None
            ),
        }
        for username, count in sorted(counts.items())
    ]
    return {
        "verdicts_last_hour": overall["last_hour"],
        "verdicts_last_24h": overall["last_24h"],
        "reviewers": reviewers,
    }


def queue_stats(*, workflow: Workflow) -> dict[str, Any]:
    now = timezone.now()
    open_tasks = ReviewTask.objects.filter(workflow=workflow, status=TaskStatus.OPEN).exclude(
        kind=TaskKind.GOLD
    )
    aggregate = open_tasks.aggregate(
        depth=Count("id"),
        oldest=Min("created_at"),
        adjudication=Count("id", filter=Q(needs_adjudication=True)),
    )
    leased = Assignment.objects.filter(
        task__workflow=workflow, state=AssignmentState.ACTIVE, expires_at__gt=now
    ).count()
    return {
        "depth": aggregate["depth"],
        "needs_adjudication": aggregate["adjudication"],
        "leased_now": leased,
        "oldest_age_seconds": _age_seconds(aggregate["oldest"], now),
    }


def model_agreement_stats(
    *, workflow: Workflow, reviewer: User | None = None
) -> list[dict[str, Any]]:
    """The rubber-stamp guard's report (D51): per reviewer, how often their verdict
    matched the model's label on assisted review cases where the suggestion was shown,
    and where it was hidden (``hidden_suggestion_rate``). A reviewer who agrees far more
    when they see the suggestion is accepting it rather than judging the case."""
    verdicts = Verdict.objects.filter(
        task__workflow=workflow,
        task__kind=TaskKind.REVIEW,
        retracted_at__isnull=True,
        case__deciding_prediction__isnull=False,
    ).filter(Q(task__show_suggestion=True) | Q(task__suggestion_hidden=True))
    if reviewer is not None:
        verdicts = verdicts.filter(reviewer=reviewer)
    tallies: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {"shown": [0, 0], "hidden": [0, 0]}
    )
    for username, label, model_label, hidden in verdicts.values_list(
        "reviewer__username", "label", "case__deciding_prediction__label", "task__suggestion_hidden"
    )[:AGREEMENT_VERDICTS_LIMIT]:
        tally = tallies[username]["hidden" if hidden else "shown"]
        tally[0] += int(label == model_label)
        tally[1] += 1
    report = []
    for username, by_kind in sorted(tallies.items()):
        row: dict[str, Any] = {"reviewer": username}
        for kind, (agree, n) in by_kind.items():
            row[f"{kind}_n"] = n
            row[f"{kind}_agreement"] = agree / n if n else None
        shown, hidden = row["shown_agreement"], row["hidden_agreement"]
        row["gap"] = shown - hidden if shown is not None and hidden is not None else None
        report.append(row)
    return report


def change_requests(
    *, workflow: Workflow, limit: int = 50, open_only: bool = False
) -> list[dict[str, Any]]:
    """Reviewers' requests to change an older verdict of theirs (D53), newest first, each
    with its ``status`` (``open``, ``accepted``, ``declined``) and the admin's answer (D92)."""
    events = (
        CaseEvent.objects.filter(case__workflow=workflow, kind="verdict_change_requested")
        .select_related("actor")
        .order_by("-created_at", "-id")
    )
    decisions = CaseEvent.objects.filter(
        case__workflow=workflow, kind="verdict_change_decided"
    ).select_related("actor")
    if open_only:
        decided = list(decisions.values_list("data__verdict", flat=True))
        if decided:
            events = events.exclude(data__verdict__in=decided)
    requests = list(events[:limit])
    answers = _change_answers(decisions, [e.data.get("verdict") for e in requests])
    rows = []
    for event in requests:
        verdict = event.data.get("verdict")
        answer = answers.get(verdict)
        rows.append(
            {
                "case": event.case_id,
                "verdict": verdict,
                "reviewer": event.actor.get_username() if event.actor else "",
                "from_label": event.data.get("from_label", ""),
                "to_label": event.data.get("to_label", ""),
                "reason": event.reason,
                "created_at": event.created_at,
                "status": answer["status"] if answer else "open",
                "decided_by": answer["decided_by"] if answer else None,
                "decided_at": answer["decided_at"] if answer else None,
                "decision_reason": answer["reason"] if answer else "",
            }
        )
    return rows


CHANGE_STATUS = {"accept": "accepted", "decline": "declined"}


def _change_answers(decisions: QuerySet[CaseEvent], verdicts: list[Any]) -> dict[Any, Any]:
    """The admins' answers to the change requests of ``verdicts``, by verdict (one query)."""
    if not verdicts:
        return {}
    return {
        event.data.get("verdict"): {
            "status": CHANGE_STATUS.get(event.data.get("decision"), "open"),
            "decided_by": event.actor.get_username() if event.actor else "",
            "decided_at": event.created_at,
            "reason": event.reason,
        }
        for event in decisions.filter(data__verdict__in=verdicts)
    }


def change_decision_view(*, event: CaseEvent) -> dict[str, Any]:
    """An admin's answer to a change request (a ``verdict_change_decided`` event), with
    the verdict and the case as they are now."""
    verdict = Verdict.objects.select_related("case").get(pk=event.data["verdict"])
    return {
        "verdict": verdict.pk,
        "case": verdict.case_id,
        "decision": event.data["decision"],
        "from_label": event.data.get("from_label", ""),
        "to_label": event.data.get("to_label", ""),
        "requested_by": event.data.get("requested_by", ""),
        "reason": event.reason,
        "decided_by": event.actor.get_username() if event.actor else "",
        "decided_at": event.created_at,
        "verdict_label": verdict.label,
        "case_status": verdict.case.status,
        "decision_label": verdict.case.decision_label,
    }


def review_stats(*, workflow: Workflow, viewer: User) -> dict[str, Any]:
    """Queue, throughput, agreement and gold accuracy for ``workflow``.

    Workflow admins see every reviewer; a reviewer sees only their own rows.
    """
    scope = None if has_right(viewer, workflow, "can_admin") else viewer
    return {
        "workflow": workflow.slug,
        "consensus_required": workflow.consensus_required,
        "gold_rate": workflow.gold_rate,
        "queue": queue_stats(workflow=workflow),
        "throughput": throughput_stats(workflow=workflow, reviewer=scope),
        "agreement": agreement_stats(workflow=workflow),
        "gold_accuracy": gold_accuracy(workflow=workflow, reviewer=scope),
        "hidden_suggestion_rate": workflow.hidden_suggestion_rate,
        "model_agreement": model_agreement_stats(workflow=workflow, reviewer=scope),
        "escalated": escalated_tasks(workflow=workflow) if scope is None else [],
        "change_requests": change_requests(workflow=workflow) if scope is None else [],
    }


# --- Reviewer statistics over time ------------------------------------------------------

PERIODS = {"day": 14, "week": 12}
"""The reviewer statistics' periods, and how many of them the page shows."""


@dataclass(frozen=True)
class ReviewerFigures:
    """One reviewer's work in one period (or the whole window)."""

    verdicts: int = 0
    skips: int = 0
    seconds_per_verdict: float | None = None
    """Mean time from taking the case to the verdict."""
    agreement_pairs: int = 0
    """Pairs of this reviewer's verdict and another reviewer's on the same review task."""
    agreement: float | None = None
    kappa: float | None = None
    """Cohen's kappa of this reviewer against the others, over those pairs."""
    gold_n: int = 0
    gold_correct: int = 0

    @property
    def skip_rate(self) -> float | None:
        taken = self.verdicts + self.skips
        return self.skips / taken if taken else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_n if self.gold_n else None


@dataclass(frozen=True)
class ReviewerActivity:
    reviewer: str
    total: ReviewerFigures
    gold_interval: tuple[float, float] | None
    periods: tuple[tuple[date, ReviewerFigures], ...]
    """Newest period first; every period of the window, empty ones included."""


@dataclass(frozen=True)
class ReviewerReport:
    period: str
    starts: tuple[date, ...]
    """The first day of each period of the window, newest first."""
    since: datetime
    reviewers: tuple[ReviewerActivity, ...]


def _period_starts(period: str, count: int, today: date) -> list[date]:
    if period == "week":
        this_week = today - timedelta(days=today.weekday())
        return [this_week - timedelta(weeks=k) for k in range(count)]
    return [today - timedelta(days=k) for k in range(count)]


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _figures(
    counts: Mapping[str, Any] | None,
    skips: int,
    pairs: Mapping[tuple[str, str], int],
) -> ReviewerFigures:
    counts = counts or {}
    n_pairs = sum(pairs.values())
    seconds = counts.get("seconds")
    return ReviewerFigures(
        verdicts=counts.get("n", 0),
        skips=skips,
        seconds_per_verdict=seconds.total_seconds() if seconds is not None else None,
        agreement_pairs=n_pairs,
        agreement=(
            sum(n for (mine, theirs), n in pairs.items() if mine == theirs) / n_pairs
            if n_pairs
            else None
        ),
        kappa=_kappa(cohen_kappa_from_pairs, pairs) if n_pairs else None,
        gold_n=counts.get("gold_n", 0),
        gold_correct=counts.get("gold_correct", 0),
    )


def reviewer_activity(
    *, workflow: Workflow, period: str = "day", now: datetime | None = None
) -> ReviewerReport:
    """Each reviewer's throughput, agreement, gold accuracy and skip rate, per day or week.

    Four aggregate queries whatever the volume: verdicts (count, gold, mean time),
    agreement pairs (each verdict against every other reviewer's standing verdict on the
    same review task, counted by label pair), skips, and the workflow's reviewers, so a
    reviewer with no work in the window is listed too. Undone verdicts do not count.
    Periods are UTC days, or weeks from Monday.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}")
    now = now or timezone.now()
    starts = _period_starts(period, PERIODS[period], now.astimezone(UTC).date())
    since = datetime.combine(starts[-1], time.min, tzinfo=UTC)
    trunc = TruncWeek if period == "week" else TruncDay

    verdicts = Verdict.objects.filter(
        task__workflow=workflow, retracted_at__isnull=True, created_at__gte=since
    )
    counted = (
        verdicts.annotate(period=trunc("created_at", tzinfo=UTC))
        .values("reviewer__username", "period")
        .annotate(
            n=Count("id"),
            gold_n=Count("id", filter=Q(task__kind=TaskKind.GOLD)),
            gold_correct=Count(
                "id", filter=Q(task__kind=TaskKind.GOLD, label=F("case__gold_label"))
            ),
            seconds=Avg(
                ExpressionWrapper(
                    F("created_at") - F("assignment__leased_at"), output_field=DurationField()
                )
            ),
        )
    )
    by_period: dict[tuple[str, date], Mapping[str, Any]] = {
        (row["reviewer__username"], _as_date(row["period"])): row for row in counted
    }
    pair_rows = (
        verdicts.filter(task__kind=TaskKind.REVIEW)
        .annotate(
            other=FilteredRelation(
                "task__verdicts",
                condition=Q(task__verdicts__retracted_at__isnull=True)
                & ~Q(task__verdicts__reviewer=F("reviewer")),
            ),
            period=trunc("created_at", tzinfo=UTC),
        )
        .filter(other__isnull=False)
        .values("reviewer__username", "period", "label", "other__label")
        .annotate(n=Count("id"))
    )
    pairs: dict[tuple[str, date], Counter[tuple[str, str]]] = defaultdict(Counter)
    for row in pair_rows:
        key = (row["reviewer__username"], _as_date(row["period"]))
        pairs[key][(row["label"], row["other__label"])] += row["n"]
    skipped = (
        Assignment.objects.filter(
            task__workflow=workflow, state=AssignmentState.SKIPPED, ended_at__gte=since
        )
        .annotate(period=trunc("ended_at", tzinfo=UTC))
        .values("reviewer__username", "period")
        .annotate(n=Count("id"))
    )
    skips = {(row["reviewer__username"], _as_date(row["period"])): row["n"] for row in skipped}
    names = set(
        WorkflowMembership.objects.filter(workflow=workflow)
        .filter(Q(can_review=True) | Q(can_admin=True))
        .values_list("user__username", flat=True)
    )
    names |= {name for name, _ in by_period} | {name for name, _ in pairs} | {n for n, _ in skips}

    reviewers = []
    for name in sorted(names):
        periods = tuple(
            (
                start,
                _figures(
                    by_period.get((name, start)),
                    skips.get((name, start), 0),
                    pairs.get((name, start), Counter()),
                ),
            )
            for start in starts
        )
        total_pairs: Counter[tuple[str, str]] = Counter()
        for start in starts:
            total_pairs.update(pairs.get((name, start), Counter()))
        total = _total(periods, total_pairs)
        interval = clopper_pearson(total.gold_correct, total.gold_n, 0.95) if total.gold_n else None
        reviewers.append(
            ReviewerActivity(
                reviewer=name,
                total=total,
                gold_interval=(interval.low, interval.high) if interval else None,
                periods=periods,
            )
        )
    return ReviewerReport(
        period=period, starts=tuple(starts), since=since, reviewers=tuple(reviewers)
    )


def _total(
    periods: tuple[tuple[date, ReviewerFigures], ...], pairs: Mapping[tuple[str, str], int]
) -> ReviewerFigures:
    figures = [f for _, f in periods]
    verdicts = sum(f.verdicts for f in figures)
    timed = [(f.seconds_per_verdict, f.verdicts) for f in figures if f.seconds_per_verdict]
    weight = sum(n for _, n in timed)
    counts = {
        "n": verdicts,
        "gold_n": sum(f.gold_n for f in figures),
        "gold_correct": sum(f.gold_correct for f in figures),
        "seconds": (timedelta(seconds=sum(s * n for s, n in timed) / weight) if weight else None),
    }
    return _figures(counts, sum(f.skips for f in figures), pairs)
