"""Per-case measurements, drift settings per workflow, and the record of each drift check."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StageError(models.TextChoices):
    NONE = "", "none"
    DECODE = "decode", "the stored image could not be read"
    SCORING = "scoring", "the model could not score the case"


class CaseMeasurement(models.Model):
    """What one case looked like and how it went through the pipeline (one row per case).

    Written by the worker in one bulk insert per batch, in the routing transaction.
    Stage times: ``received_at`` (the case row was stored; its processing message is
    queued when that transaction commits), ``scoring_started_at`` (a worker claimed it),
    ``scored_at`` (its predictions were stored), ``routed_at`` (decided by the model or
    sent to review); the decision time is the case's ``decided_at``. Image and output
    measurements are ``inference.measure``'s; ``embedding`` the deciding model's 32-d
    projected penultimate-layer embedding.
    """

    case = models.OneToOneField(
        "workflows.Case", primary_key=True, on_delete=models.CASCADE, related_name="measurement"
    )
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        "modelops.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField()
    scoring_started_at = models.DateTimeField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    routed_at = models.DateTimeField()
    error_stage = models.CharField(max_length=16, choices=StageError.choices, blank=True)

    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    file_size = models.PositiveIntegerField(null=True, blank=True)
    image_format = models.CharField(max_length=8, blank=True)
    brightness = models.FloatField(null=True, blank=True)
    contrast = models.FloatField(null=True, blank=True)
    sharpness = models.FloatField(null=True, blank=True)
    saturation = models.FloatField(null=True, blank=True)
    clipped = models.FloatField(null=True, blank=True)
    metadata_keys = models.JSONField(default=list, blank=True)

    label = models.CharField(max_length=64, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    margin = models.FloatField(null=True, blank=True)
    entropy = models.FloatField(null=True, blank=True)
    embedding = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workflow", "routed_at"], name="measure_workflow_time"),
            models.Index(
                fields=["workflow", "model_version", "routed_at"], name="measure_version_time"
            ),
        ]

    def __str__(self) -> str:
        return f"measurement of case {self.case_id}"


class MonitoringSettings(models.Model):
    """A workflow's drift thresholds, reference window and what an alert may do.

    Without a row the defaults apply (``monitoring.conf``). A pinned reference
    (``reference_from``..``reference_until``) replaces the default one: the first
    ``reference_size`` cases after the serving version went live or the level was last
    raised, whichever is later.
    """

    workflow = models.OneToOneField(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="monitoring_settings"
    )
    reference_from = models.DateTimeField(null=True, blank=True)
    reference_until = models.DateTimeField(null=True, blank=True)
    reference_pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reference_size = models.PositiveIntegerField(default=300)
    window = models.PositiveIntegerField(default=200)
    check_every = models.PositiveIntegerField(default=50)
    alpha = models.FloatField(default=0.001)
    min_effect = models.FloatField(default=0.35)
    persistence = models.PositiveIntegerField(default=2)
    estimate_alert_below = models.FloatField(
        null=True, blank=True, help_text="Empty: the workflow's target accuracy."
    )
    # What a new alert does, if an admin armed it (``monitoring.services.alert_actions_run``):
    # per kind, step the level down one notch and/or start a retraining run.
    step_down_on_drift = models.BooleanField(default=False)
    retrain_on_drift = models.BooleanField(default=False)
    step_down_on_estimate = models.BooleanField(default=False)
    retrain_on_estimate = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"monitoring settings of {self.workflow_id}"


class DriftCheck(models.Model):
    """One drift check of a workflow: what it compared, what it found, the estimate."""

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="drift_checks"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    model_version = models.ForeignKey(
        "modelops.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    measured_until = models.DateTimeField(help_text="routed_at of the newest case compared")
    cases_seen = models.PositiveIntegerField(help_text="measured cases of the version so far")
    enough_data = models.BooleanField()
    drifted = models.JSONField(default=list, blank=True)
    alarm = models.JSONField(default=list, blank=True, help_text="drifted persistently")
    report = models.JSONField(default=dict, blank=True)
    estimate = models.JSONField(null=True, blank=True)
    reference = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workflow", "created_at"], name="driftcheck_workflow_time")]

    def __str__(self) -> str:
        return f"drift check {self.pk} of {self.workflow_id}"
