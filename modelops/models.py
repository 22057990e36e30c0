"""Model versions, the deployments that give them a role in a workflow, and around them:
the deployment audit log, retraining runs and their trigger rule, cached saliency maps."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workflows.models import ActorType


class ModelSource(models.TextChoices):
    UI = "ui", "models page"
    API = "api", "API"
    COMMAND = "command", "management command"
    TRAINING = "training", "retraining run"
    FIXTURE = "fixture", "fixture or demo"


class ModelRuntime(models.TextChoices):
    EAGER = "eager", "PyTorch (eager, channels-last)"
    ONNX = "onnx", "ONNX Runtime"
    ONNX_INT8 = "onnx_int8", "ONNX Runtime, int8"


class ModelVersion(models.Model):
    """A registered, checksummed model with its label set.

    The weights file is a state dict loaded with ``weights_only=True`` (or a TorchScript
    file registered by an admin); it is never unpickled. ``sha256`` is checked on every
    load, so a swapped or corrupted file is refused rather than silently served.
    Rows are written only by ``modelops.services.model_version_register``, after the
    file passed the sandboxed load check; they are never changed afterwards.
    """

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    workflow = models.ForeignKey(
        "workflows.Workflow",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="model_versions",
        help_text="The workflow it was registered for (its label set was checked against).",
    )
    architecture = models.CharField(max_length=64)
    arch_kwargs = models.JSONField(default=dict, blank=True)
    labels = models.JSONField()
    input_size = models.PositiveIntegerField(default=96)
    mean = models.JSONField(default=list)
    std = models.JSONField(default=list)
    weights = models.FileField(upload_to="models/", max_length=255)
    sha256 = models.CharField(max_length=64)
    source = models.CharField(
        max_length=16, choices=ModelSource.choices, default=ModelSource.FIXTURE
    )
    runtime = models.CharField(
        max_length=16,
        choices=ModelRuntime.choices,
        default=ModelRuntime.EAGER,
        help_text="What serves it, chosen at registration after the runtime check.",
    )
    runtime_file = models.FileField(upload_to="models/", max_length=255, blank=True)
    runtime_sha256 = models.CharField(max_length=64, blank=True)
    runtime_check = models.JSONField(
        default=dict,
        blank=True,
        help_text="The runtime's agreement with torch at registration: sample, "
        "max_abs_diff, top1_agreement, tolerances, milliseconds per image.",
    )
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
    """A model version's role in a workflow. At most one active deployment per role.

    ``replaces`` is the serving deployment this one took over from (promotion), which is
    what a rollback returns to. Deployments are changed only by ``modelops.services``,
    holding the workflow's row lock.
    """

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="deployments"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    role = models.CharField(max_length=16, choices=DeploymentRole.choices)
    traffic_share = models.FloatField(default=0.0, help_text="Share of cases a canary decides.")
    active = models.BooleanField(default=True)
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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


class DeploymentAction(models.TextChoices):
    REGISTER = "register", "registered"
    DEPLOY = "deploy", "deployed"
    END = "end", "ended"
    TRAFFIC = "traffic", "canary share changed"
    PROMOTE = "promote", "promoted to serving"
    ROLLBACK = "rollback", "rolled back"


class DeploymentEvent(models.Model):
    """The deployment audit log: who did what to which role, from which version to which,
    and why. Written in the same transaction as the change it records."""

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="deployment_events"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=DeploymentAction.choices)
    role = models.CharField(max_length=16, blank=True)
    from_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workflow", "created_at"])]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.action} {self.role}: {self.from_version_id}->" + str(
            self.to_version_id
        )


class TrainingStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_TRAINING_STATUSES = (TrainingStatus.QUEUED, TrainingStatus.RUNNING)


class TrainingRun(models.Model):
    """One retraining job: its inputs (seed, split, hyper-parameters), live progress and
    outcome. At most one queued or running run per workflow (a database constraint).

    ``progress`` is a list of ``{"epoch", "loss", "val_accuracy"}`` appended by the worker
    after every epoch; ``cancel_requested`` is polled by the worker between batches.
    """

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="training_runs"
    )
    status = models.CharField(
        max_length=12, choices=TrainingStatus.choices, default=TrainingStatus.QUEUED
    )
    trigger = models.CharField(max_length=32, default="manual")
    reason = models.TextField(blank=True)
    base_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    architecture = models.CharField(max_length=64)
    input_size = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    hyperparameters = models.JSONField(default=dict)
    split = models.JSONField(default=dict, blank=True)
    progress = models.JSONField(default=list, blank=True)
    epochs_total = models.PositiveIntegerField()
    cancel_requested = models.BooleanField(default=False)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    device = models.CharField(max_length=16, blank=True)
    result_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_training_run_per_workflow",
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status}) for {self.workflow_id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_TRAINING_STATUSES


class TrainingRunEvent(models.Model):
    """One change of a training run's status: who or what made it, when, and why.

    Written by ``modelops.retraining.training_run_transition`` in the transaction that
    changes the status, and only there.
    """

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="events")
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
        indexes = [models.Index(fields=["run", "created_at"], name="training_run_event_trail")]

    def __str__(self) -> str:
        return f"training run {self.run_id} {self.from_status}->{self.to_status}"


class RetrainRule(models.Model):
    """When to start a retraining run by itself. Off by default.

    ``every_n_labels``: after this many new human labels since the last rule-started run.
    ``after_step_down``: after the automation level was stepped down automatically.
    """

    workflow = models.OneToOneField(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="retrain_rule"
    )
    enabled = models.BooleanField(default=False)
    every_n_labels = models.PositiveIntegerField(null=True, blank=True)
    after_step_down = models.BooleanField(default=False)
    epochs = models.PositiveIntegerField(default=8)
    labels_at_last_trigger = models.PositiveIntegerField(default=0)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"retrain rule of {self.workflow_id} ({'on' if self.enabled else 'off'})"


class SaliencyStatus(models.TextChoices):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


def saliency_path(instance: SaliencyMap, filename: str) -> str:
    case = instance.case
    return f"saliency/{case.workflow_id}/{case.id}-{instance.model_version_id}.png"


class SaliencyMap(models.Model):
    """A cached Grad-CAM overlay of one case for one model version, computed in the worker."""

    case = models.ForeignKey("workflows.Case", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=64)
    status = models.CharField(
        max_length=8, choices=SaliencyStatus.choices, default=SaliencyStatus.PENDING
    )
    image = models.FileField(upload_to=saliency_path, max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "model_version"], name="one_saliency_map_per_case_and_version"
            ),
        ]

    def __str__(self) -> str:
        return f"saliency of {self.case_id} by {self.model_version_id} ({self.status})"
