"""Review tasks (the queue), assignments (leases) and verdicts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workflows.models import ActorType


class TaskKind(models.TextChoices):
    REVIEW = "review", "review (the human decides)"
    AUDIT = "audit", "audit of a model-decided case (blind)"
    GOLD = "gold", "gold case with a known answer"


class TaskStatus(models.TextChoices):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class ReviewTask(models.Model):
    """A case waiting for humans. ``show_suggestion`` is fixed by the routing decision.

    A case has at most one open review or audit task (a database constraint); gold tasks
    are per reviewer (``for_reviewer``) and never decide anything.
    """

    case = models.ForeignKey("workflows.Case", on_delete=models.CASCADE, related_name="tasks")
    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="review_tasks"
    )
    kind = models.CharField(max_length=8, choices=TaskKind.choices, default=TaskKind.REVIEW)
    reason = models.CharField(max_length=16)
    show_suggestion = models.BooleanField(default=False)
    status = models.CharField(
        max_length=12, choices=TaskStatus.choices, default=TaskStatus.OPEN, db_index=True
    )
    verdicts_required = models.PositiveSmallIntegerField(
        default=1, help_text="Verdicts to collect; raised by one when reviewers disagree."
    )
    agreement_required = models.PositiveSmallIntegerField(
        default=1, help_text="Agreeing verdicts that decide the case (the workflow's consensus)."
    )
    needs_adjudication = models.BooleanField(default=False)
    # Skips (D48): each skip counts, and the task waits ``workflow.skip_delay_seconds``
    # before anyone is offered it again; at ``workflow.max_skips`` it goes to the
    # workflow's admins (``escalated``), who see it first and alone.
    skip_count = models.PositiveSmallIntegerField(default=0)
    available_at = models.DateTimeField(null=True, blank=True)
    escalated = models.BooleanField(default=False)
    # The rubber-stamp guard (D51): an assistance case whose suggestion was drawn to be
    # hidden. ``show_suggestion`` is then False; this records why.
    suggestion_hidden = models.BooleanField(default=False)
    for_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(status="open") & ~models.Q(kind="gold"),
                name="one_open_task_per_case",
            ),
            models.UniqueConstraint(
                fields=["case", "for_reviewer"],
                condition=models.Q(kind="gold"),
                name="one_gold_task_per_case_and_reviewer",
            ),
        ]
        indexes = [
            models.Index(fields=["workflow", "status", "created_at"]),
            # The claim query walks this in order: open, shared (not gold) tasks only.
            models.Index(
                fields=["workflow", "needs_adjudication", "created_at", "id"],
                condition=models.Q(status="open") & ~models.Q(kind="gold"),
                name="review_task_claim_queue",
            ),
            # The admins' queue of cases skipped too often (D48).
            models.Index(
                fields=["workflow", "created_at", "id"],
                condition=models.Q(status="open")
                & models.Q(escalated=True)
                & ~models.Q(kind="gold"),
                name="review_task_escalated_queue",
            ),
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.kind}) for case {self.case_id}"


class ReviewTaskEvent(models.Model):
    """One change of a review task's status: who or what made it, when, and why.

    Written by ``review.services.review_task_transition`` (and its bulk variant) in the
    transaction that changes the status, and only there.
    """

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32, default="status")
    from_status = models.CharField(max_length=12)
    to_status = models.CharField(max_length=12)
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["task", "created_at"], name="review_task_event_trail")]

    def __str__(self) -> str:
        return f"task {self.task_id} {self.from_status}->{self.to_status}"


class AssignmentState(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXPIRED = "expired"
    SKIPPED = "skipped"
    RELEASED = "released"


class Assignment(models.Model):
    """One reviewer's lease on a task. At most one active assignment per task."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_assignments"
    )
    state = models.CharField(
        max_length=12, choices=AssignmentState.choices, default=AssignmentState.ACTIVE
    )
    leased_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(state="active"),
                name="one_active_assignment_per_task",
            ),
        ]
        indexes = [
            models.Index(fields=["reviewer", "state"]),
            models.Index(fields=["task", "reviewer"], name="assignment_task_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} on task {self.task_id} ({self.state})"


class Verdict(models.Model):
    """A reviewer's answer. One standing verdict per (task, reviewer)."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="verdicts")
    case = models.ForeignKey("workflows.Case", on_delete=models.CASCADE, related_name="verdicts")
    assignment = models.OneToOneField(
        Assignment, on_delete=models.CASCADE, related_name="verdict", null=True
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verdicts"
    )
    label = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retracted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "reviewer"],
                condition=models.Q(retracted_at__isnull=True),
                name="one_standing_verdict_per_task_and_reviewer",
            ),
        ]
        indexes = [models.Index(fields=["reviewer", "created_at"], name="verdict_reviewer_recent")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reviewer}: {self.label} on case {self.case_id}"
