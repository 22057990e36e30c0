"""The automation audit log (level changes) and alerts."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class LevelChange(models.Model):
    """One change of a workflow's automation policy: who, when, from what, to what, why.

    ``before`` and ``after`` are full policy snapshots; ``from_level`` and ``to_level``
    repeat their levels so that "the last change of level" and "the last automatic step
    down" are plain indexed queries (the evidence windows start there). Rows are only
    ever created, by ``automation.services``; nothing edits or deletes them.
    """

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="level_changes"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    automatic = models.BooleanField(default=False)
    overridden = models.BooleanField(
        default=False, help_text="A superuser raised the level without the required evidence."
    )
    from_level = models.CharField(max_length=16, blank=True)
    to_level = models.CharField(max_length=16, blank=True)
    before = models.JSONField()
    after = models.JSONField()
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workflow", "created_at"], name="levelchange_workflow_time"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.from_level} -> {self.to_level}"

    @property
    def level_changed(self) -> bool:
        return self.from_level != self.to_level


class AlertState(models.TextChoices):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"  # someone is on it; still active until resolved
    RESOLVED = "resolved"


# The states in which an alert is still open (shown, not raised again).
ACTIVE_ALERT_STATES = (AlertState.FIRING, AlertState.ACKNOWLEDGED)


class AlertKind(models.TextChoices):
    ACCURACY = "accuracy"
    DRIFT = "drift"
    QUEUE_AGE = "queue_age"
    ERRORS = "errors"
    INPUT_DRIFT = "input_drift"  # monitoring: input, output or embedding drift
    ACCURACY_ESTIMATE = "accuracy_estimate"  # monitoring: the label-free estimate dropped


class Alert(models.Model):
    """A condition that fired (accuracy, drift, queue age, errors) and what it triggered.

    ``data`` holds the evidence and, for an accuracy alert, the id of the automatic
    level change it triggered (``level_change``); ``resolution`` says why it resolved.
    Someone may acknowledge it (who, when, a note) before it resolves; ``resolved_by``
    is empty when the condition itself cleared.
    """

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="alerts"
    )
    kind = models.CharField(max_length=32)
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.FIRING)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledgement = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workflow", "state", "kind"], name="alert_workflow_state")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.state}) on {self.workflow_id}"
