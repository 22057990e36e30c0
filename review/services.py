"""Writes for the review queue: opening tasks, claiming, verdicts."""

from __future__ import annotations

from django.db import transaction

from automation.routing import ReviewReason
from review.models import ReviewTask, TaskKind
from workflows.models import Case


def review_task_open(
    *, case: Case, kind: str, reason: ReviewReason | str | None, show_suggestion: bool
) -> ReviewTask:
    """Put ``case`` in its workflow's review queue. Call inside the case's transaction."""
    assert transaction.get_connection().in_atomic_block, "open a task inside the case transaction"
    workflow = case.workflow
    required = workflow.consensus_required if kind == TaskKind.REVIEW else 1
    return ReviewTask.objects.create(
        case=case,
        workflow=workflow,
        kind=kind,
        reason=str(reason.value if isinstance(reason, ReviewReason) else reason or ""),
        show_suggestion=show_suggestion,
        verdicts_required=required,
    )
