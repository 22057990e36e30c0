"""Deadlines and the workflow's fallback when no human decides in time.

A case may carry a deadline (``deadline_seconds`` or an absolute ``deadline`` when it
is submitted). A case still waiting for a human (``in_review``) when its deadline
passes gets its workflow's fallback, once, from the periodic ``cases_deadline_fallback``
task:

* ``label``: decided with ``fallback_label`` (e.g. ``reject``);
* ``model``: decided with the model's label if its confidence is at least
  ``fallback_threshold``; otherwise escalated;
* ``escalate``: the review task goes to the workflow's admins (it waits for
  adjudication, which admins get first);
* ``none``: only recorded.

A decision taken this way has its own source (``fallback``) and reason, in the case's
event trail; every fallback emits ``case.deadline_missed`` to webhooks (a decision also
emits ``case.decided``). The review queue hands out cases with the nearest deadline
first.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.models import EventType
from integrations.services import event_emit
from kernel.bounds import bounded_int
from kernel.errors import InvalidInput
from monitoring.metrics import DEADLINE_FALLBACKS
from review.models import AssignmentState, ReviewTask, TaskKind, TaskStatus
from review.services import assignments_end, review_task_transition
from workflows.access import FULL
from workflows.models import ActorType, Case, CaseStatus, DecisionSource, Prediction
from workflows.serializers import CaseOutput
from workflows.services import case_event_record, case_transition

FALLBACK_ACTIONS = ("none", "label", "escalate", "model")
MAX_DEADLINE_SECONDS = 30 * 24 * 3600


def deadline_parse(*, seconds: Any, at: Any, now: datetime | None = None) -> datetime | None:
    """The deadline from ``deadline_seconds`` (1 s to 30 days) or ``deadline`` (ISO 8601
    with a time zone, in the future, at most 30 days ahead); not both."""
    now = now or timezone.now()
    given_seconds = seconds not in (None, "")
    given_at = at not in (None, "")
    if given_seconds and given_at:
        raise InvalidInput(
            "deadline: give deadline_seconds or deadline, not both", field="deadline"
        )
    if given_seconds:
        value = bounded_int(
            seconds, name="deadline_seconds", minimum=1, maximum=MAX_DEADLINE_SECONDS
        )
        return now + timedelta(seconds=value)
    if given_at:
        parsed = parse_datetime(at) if isinstance(at, str) and len(at) <= 64 else None
        if parsed is None or parsed.tzinfo is None:
            raise InvalidInput(
                "deadline: an ISO 8601 date and time with a time zone, e.g. 2026-12-01T08:00:00Z",
                field="deadline",
            )
        if parsed <= now:
            raise InvalidInput("deadline: is in the past", field="deadline")
        if parsed > now + timedelta(seconds=MAX_DEADLINE_SECONDS):
            raise InvalidInput("deadline: at most 30 days ahead", field="deadline")
        return parsed
    return None


def cases_deadline_due(*, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    return list(
        Case.objects.filter(
            status=CaseStatus.IN_REVIEW,
            deadline_at__lte=now,
            deadline_fallback_at__isnull=True,
        )
        .order_by("deadline_at")
        .values_list("id", flat=True)[:limit]
    )


def _model_opinion(case: Case) -> Prediction | None:
    """The prediction the case was routed with, or the serving/canary one."""
    if case.deciding_prediction_id is not None:
        return case.deciding_prediction
    return (
        Prediction.objects.filter(case=case)
        .exclude(role="shadow")
        .select_related("model_version")
        .order_by("-created_at", "-id")
        .first()
    )


def case_deadline_fallback(*, case_id: uuid.UUID | str, now: datetime) -> str | None:
    """Apply the workflow's fallback to a case past its deadline; what was done, or None
    when there was nothing to do (not due, no longer in review, already handled)."""
    with transaction.atomic():
        case = (
            Case.objects.select_for_update(of=("self",))
            .select_related("workflow")
            .filter(pk=case_id)
            .first()
        )
        if (
            case is None
            or case.status != CaseStatus.IN_REVIEW
            or case.deadline_at is None
            or case.deadline_at > now
            or case.deadline_fallback_at is not None
        ):
            return None
        workflow = case.workflow
        action = (
            workflow.fallback_action if workflow.fallback_action in FALLBACK_ACTIONS else "none"
        )
        late = (now - case.deadline_at).total_seconds()
        reason = (
            f"deadline {case.deadline_at.isoformat()} passed ({late:.0f} s ago) "
            "without a human decision"
        )
        tasks = list(
            ReviewTask.objects.select_for_update()
            .filter(case=case, status=TaskStatus.OPEN)
            .exclude(kind=TaskKind.GOLD)
        )
        label = ""
        confidence: float | None = None
        version = None
        if action == "model":
            opinion = _model_opinion(case)
            threshold = workflow.fallback_threshold
            if opinion is not None and threshold is not None and opinion.confidence >= threshold:
                label, confidence, version = (
                    opinion.label,
                    opinion.confidence,
                    opinion.model_version,
                )
                reason += (
                    f"; fallback: the model's {opinion.label!r} at {opinion.confidence:.3f} "
                    f">= fallback threshold {threshold}"
                )
            else:
                action = "escalate"
                reason += (
                    "; fallback: the model's confidence "
                    + (f"{opinion.confidence:.3f}" if opinion else "(none)")
                    + f" is below the fallback threshold {threshold}: escalated to admins"
                )
        elif action == "label":
            label = workflow.fallback_label
            if label not in workflow.labels:
                action = "escalate"
                reason += f"; fallback label {label!r} is not a label: escalated to admins"
            else:
                reason += f"; fallback: the safe label {label!r}"
        elif action == "escalate":
            reason += "; fallback: escalated to admins"
        else:
            reason += "; no fallback set"

        case.deadline_fallback_at = now
        if label:
            for task in tasks:
                assignments_end(
                    leases=task.assignments.all(), to_state=AssignmentState.RELEASED, now=now
                )
                review_task_transition(
                    task=task,
                    to_status=TaskStatus.CANCELLED,
                    actor_type=ActorType.SYSTEM,
                    reason=reason,
                )
            case.decision_label = label
            case.decision_source = DecisionSource.FALLBACK
            case.decision_confidence = confidence
            case.decision_model_version = version
            case.decided_by = None
            case.decided_at = now
            case_transition(
                case=case,
                to_status=CaseStatus.DECIDED,
                actor_type=ActorType.SYSTEM,
                reason=reason,
                data={"fallback": action, "label": label, "confidence": confidence},
                fields=(
                    "deadline_fallback_at",
                    "decision_label",
                    "decision_source",
                    "decision_confidence",
                    "decision_model_version",
                    "decided_by",
                    "decided_at",
                ),
            )
        else:
            if action == "escalate":
                for task in tasks:
                    task.needs_adjudication = True
                    task.save(update_fields=["needs_adjudication"])
            case.save(update_fields=["deadline_fallback_at", "updated_at"])
            case_event_record(
                case=case,
                kind="deadline_missed",
                actor_type=ActorType.SYSTEM,
                reason=reason,
                data={"fallback": action},
            )
        event_emit(
            workflow=workflow,
            type=EventType.CASE_DEADLINE_MISSED,
            payload={
                "case": CaseOutput(case, context={"visibility": FULL}).data,
                "fallback": action,
                "reason": reason,
            },
            ordering_key=str(case.pk),
        )
        # Counted once the fallback is stored: a rolled-back attempt is retried and
        # must not count twice.
        transaction.on_commit(partial(_fallback_count, slug=workflow.slug, kind=action))
    return action


def _fallback_count(*, slug: str, kind: str) -> None:
    DEADLINE_FALLBACKS.labels(slug, kind).inc()


def cases_deadline_fallback(*, now: datetime | None = None) -> int:
    """Apply the fallback to every case in review past its deadline; how many."""
    now = now or timezone.now()
    return sum(
        case_deadline_fallback(case_id=case_id, now=now) is not None
        for case_id in cases_deadline_due(now=now)
    )


def workflow_fallback_set(
    *, workflow: Any, action: str, label: str = "", threshold: float | None = None
) -> Any:
    """Set the workflow's deadline fallback (the one service for every path)."""
    if action not in FALLBACK_ACTIONS:
        raise InvalidInput(f"action: one of {list(FALLBACK_ACTIONS)}", field="action")
    if action == "label" and label not in workflow.labels:
        raise InvalidInput(
            f"label: the safe label must be one of the workflow's labels {workflow.labels}",
            field="label",
        )
    if action == "model" and threshold is None:
        raise InvalidInput(
            "threshold: the model decides only at or above a fallback threshold",
            field="threshold",
        )
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InvalidInput("threshold: between 0 and 1", field="threshold")
    workflow.fallback_action = action
    workflow.fallback_label = label if action == "label" else ""
    workflow.fallback_threshold = threshold if action == "model" else None
    workflow.save(update_fields=["fallback_action", "fallback_label", "fallback_threshold"])
    return workflow
