"""Model versions and the deployments that give them a role in a workflow."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    """A registered, checksummed model with its label set.

    The weights file is a state dict loaded with ``weights_only=True`` (or a TorchScript
    file registered by an admin); it is never unpickled. ``sha256`` is checked on every
    load, so a swapped or corrupted file is refused rather than silently served.
    """

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    architecture = models.CharField(max_length=64)
    arch_kwargs = models.JSONField(default=dict, blank=True)
    labels = models.JSONField()
    input_size = models.PositiveIntegerField(default=96)
    mean = models.JSONField(default=list)
    std = models.JSONField(default=list)
    weights = models.FileField(upload_to="models/", max_length=255)
    sha256 = models.CharField(max_length=64)
    provenance = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
        ]
        ordering = ["name", "-version"]

    def __str__(self) -> str:
        return f"{self.name}:v{self.version}"

    @property
    def tag(self) -> str:
        return str(self)


class DeploymentRole(models.TextChoices):
    SERVING = "serving", "serving"
    SHADOW = "shadow", "shadow challenger"
    CANARY = "canary", "canary"


class Deployment(models.Model):
    """A model version's role in a workflow. At most one active deployment per role."""

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="deployments"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    role = models.CharField(max_length=16, choices=DeploymentRole.choices)
    traffic_share = models.FloatField(default=0.0, help_text="Share of cases a canary decides.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "role"],
                condition=models.Q(active=True),
                name="one_active_deployment_per_role",
            ),
            models.CheckConstraint(
                condition=models.Q(traffic_share__gte=0.0) & models.Q(traffic_share__lte=1.0),
                name="deployment_traffic_share_in_unit_interval",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.model_version} as {self.role} in {self.workflow_id}"
