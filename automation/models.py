"""The automation audit log (level changes) and alerts."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class LevelChange(models.Model):
    """One change of a workflow's automation policy: who, when, from what, to what, why."""

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
    before = models.JSONField()
    after = models.JSONField()
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.before.get('level')} -> {self.after.get('level')}"


class AlertState(models.TextChoices):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(models.Model):
    """A condition that fired (accuracy, drift, queue age, errors) and what it triggered."""

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="alerts"
    )
    kind = models.CharField(max_length=32)
    state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.FIRING)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} ({self.state}) on {self.workflow_id}"
