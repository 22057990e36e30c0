"""Workflows, their members, cases, case events and predictions."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Cast, Coalesce, NullIf, Substr

from decisions.routing import Level, ReviewReason


class Workflow(models.Model):
    """One inspection task: its label set, automation policy, deployments and people."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Reviewer instructions, Markdown; sanitised whenever it is shown.
    instructions = models.TextField(blank=True)
    labels = models.JSONField(help_text="The label set, in display order.")
    # Per label: {"ok": {"key": "k", "color": "#2e7d32"}}. Labels absent here get defaults
    # (see workflows.labels). Labels are never renamed or removed once they have verdicts.
    label_settings = models.JSONField(default=dict, blank=True)
    # Archived workflows take no new cases; their labelled data stays.
    archived_at = models.DateTimeField(null=True, blank=True)

    # Automation policy. Changes go through automation.services.automation_update, which
    # writes a LevelChange with its reason and evidence.
    level = models.CharField(max_length=16, choices=[(v.value, v.value) for v in Level])
    confidence_threshold = models.FloatField(default=0.9)
    class_thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per-class rules: {"ok": 0.8, "crack": null} (null: never auto-decided).',
    )
    audit_rate = models.FloatField(default=0.05)
    target_accuracy = models.FloatField(default=0.95)
    # The guarantee of ``partial``: error among the cases the model decides alone, kept
    # below this with ``evidence_confidence`` by the calibrated threshold (D54).
    target_error = models.FloatField(default=0.02)
    min_evidence = models.PositiveIntegerField(default=200)
    evidence_confidence = models.FloatField(default=0.95)

    consensus_required = models.PositiveSmallIntegerField(default=1)
    gold_rate = models.FloatField(default=0.0)
    review_lease_seconds = models.PositiveIntegerField(default=300)
    # A skipped case returns to the queue after this delay, to other reviewers first; a
    # case skipped max_skips times goes to the workflow's admins.
    skip_delay_seconds = models.PositiveIntegerField(default=60)
    max_skips = models.PositiveSmallIntegerField(default=3)
    # Assistance mode: the share of cases shown without the model's suggestion, so each
    # reviewer's agreement with the model can be compared shown vs hidden.
    hidden_suggestion_rate = models.FloatField(default=0.0)
    # Retraining's default augmentation (inference.augment.Augmentation as JSON); empty:
    # the platform's orientation-safe default (no flips). A run may choose its own.
    training_augmentation = models.JSONField(default=dict, blank=True)

    # What happens to a case whose deadline passes while it waits for a human: nothing
    # ("none"), decide it with fallback_label ("label"), send it to the workflow's admins
    # ("escalate"), or take the model's answer if its confidence is at least
    # fallback_threshold, else escalate ("model"). See processing.deadlines.
    fallback_action = models.CharField(max_length=16, default="none")
    fallback_label = models.CharField(max_length=64, blank=True)
    fallback_threshold = models.FloatField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence_threshold__gte=0.0)
                & models.Q(confidence_threshold__lte=1.0),
                name="workflow_threshold_in_unit_interval",
            ),
            models.CheckConstraint(
                condition=models.Q(audit_rate__gte=0.0) & models.Q(audit_rate__lte=1.0),
                name="workflow_audit_rate_in_unit_interval",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class WorkflowMembership(models.Model):
    """What one user (a person or an upstream system's account) may do in a workflow."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflow_memberships"
    )
    can_submit = models.BooleanField(default=False)
    can_review = models.BooleanField(default=False)
    can_admin = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "user"], name="one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workflow}"


def label_example_path(instance: LabelExample, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"label-examples/{instance.workflow.slug}/{uuid.uuid4().hex}.{extension}"


class LabelExample(models.Model):
    """An example image of one label, shown to reviewers beside the workflow's instructions.

    Written only by ``workspace.services.label_example_add`` / ``label_example_remove``
    (the API, the settings page and the Django admin call them); the image is checked like
    a case's image before anything is stored.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="label_examples")
    label = models.CharField(max_length=64)
    caption = models.CharField(max_length=200, blank=True)
    image = models.FileField(upload_to=label_example_path, max_length=255)
    image_format = models.CharField(max_length=8)
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    image_bytes = models.PositiveIntegerField()
    image_sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "created_at", "id"]
        constraints = [
            # The same picture twice under one label says nothing new.
            models.UniqueConstraint(
                fields=["workflow", "label", "image_sha256"], name="label_example_unique_image"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} {self.label} example {self.pk}"


class CaseStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSING = "processing"
    IN_REVIEW = "in_review"
    DECIDED = "decided"
    FAILED = "failed"


class DecisionSource(models.TextChoices):
    MODEL = "model"
    HUMAN = "human"
    # The workflow's deadline fallback decided (no human decided in time).
    FALLBACK = "fallback"


def case_image_path(instance: Case, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"cases/{instance.workflow.slug}/{instance.id}.{extension}"


def case_label_expression() -> Coalesce:
    """A case's label: its human label where a human labelled it, else its decision label
    (a model's decision not yet audited). "" for a case with neither.

    The case list's ``label`` filter and the export read this one expression, and an
    index is built on it (PostgreSQL uses an expression index only for the same
    expression)."""
    return Coalesce(
        NullIf(models.F("human_label"), models.Value("")),
        models.F("decision_label"),
        output_field=models.CharField(),
    )


# The near-copy lookup (workflows.services.case_duplicate_root) splits the 16 hex digits
# of a perceptual hash into these bands, (first digit, 1-based; digits). Two hashes
# within d bits differ in at most d digits, so with d < len(PHASH_BANDS) they agree on a
# whole band (multi-index hashing): the lookup reads only the cases that share a band,
# through one index per band, instead of scanning the newest cases. Five bands reach 4
# bits: loopgate/settings.py refuses a LOOPGATE_DUPLICATE_MAX_DISTANCE above that.
PHASH_BANDS = ((1, 4), (5, 3), (8, 3), (11, 3), (14, 3))


class PhashKey(models.Func):
    """``<workflow id>/<digits>``: a key of the near-copy lookup's indexes (D150).

    The workflow and the digits in one expression, so that only the index built on it can
    answer the lookup, whatever the planner's statistics say about the workflow: with a
    plain ``workflow_id = %s`` beside the digits, a workflow that grew since the last
    ANALYZE looked small, and the planner walked all of its cases through any index that
    leads with the workflow. ``workflows.services`` writes the same expression by hand."""

    arg_joiner = " || '/' || "
    template = "(%(expressions)s)"
    output_field = models.TextField()

    def __init__(self, digits: models.Expression | models.F) -> None:
        super().__init__(Cast("workflow", models.TextField()), digits)


class Case(models.Model):
    """One item to decide. Its status changes only in workflows.services.case_transition."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: every index of the table that reads by workflow leads with it.
    workflow = models.ForeignKey(
        Workflow, on_delete=models.PROTECT, related_name="cases", db_index=False
    )
    # NULL, not "", when absent: the uniqueness constraint applies only to given ids.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    metadata = models.JSONField(default=dict, blank=True)
    image = models.FileField(upload_to=case_image_path, max_length=255)
    image_format = models.CharField(max_length=8)
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    image_bytes = models.PositiveIntegerField()
    image_sha256 = models.CharField(max_length=64)
    # The image's 64-bit perceptual hash (16 hex digits), and the first case of the
    # workflow whose image is the same or nearly so (Hamming distance <= the setting
    # LOOPGATE_DUPLICATE_MAX_DISTANCE). A duplicate counts once: it is never evidence,
    # calibration, comparison or audit, and shares its first case's side of every split.
    phash = models.CharField(max_length=16, blank=True, default="")
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="duplicates"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    status = models.CharField(
        max_length=16, choices=CaseStatus.choices, default=CaseStatus.RECEIVED, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processing_attempts = models.PositiveSmallIntegerField(default=0)
    # The worker process that claimed the case for processing (WorkerHeartbeat.name): a
    # claim whose process is gone is taken over at once (see services._claim_is_dead).
    claimed_by = models.CharField(max_length=255, blank=True)
    # The processing message could not be published (broker down): the sweeper
    # publishes it on its next run instead of waiting for the stall time.
    publish_pending = models.BooleanField(default=False)
    # When the sweeper last queued the case again: it does so once per stall period.
    requeued_at = models.DateTimeField(null=True, blank=True)
    # The model versions chosen when the case was first claimed (see cases_process).
    planned_versions = models.JSONField(default=dict, blank=True)
    # When an answer is due; past it, a case still in review gets the workflow's
    # fallback (processing.deadlines), once (deadline_fallback_at).
    deadline_at = models.DateTimeField(null=True, blank=True)
    deadline_fallback_at = models.DateTimeField(null=True, blank=True)

    # How the case was routed: the policy in force and the routing function's answer.
    routed_level = models.CharField(max_length=16, blank=True)
    routed_threshold = models.FloatField(null=True, blank=True)
    review_reason = models.CharField(
        max_length=16, blank=True, choices=[(v.value, v.value) for v in ReviewReason]
    )
    suggestion_visible = models.BooleanField(default=False)
    deciding_prediction = models.ForeignKey(
        "Prediction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failure_reason = models.TextField(blank=True)

    # The decision.
    decision_label = models.CharField(max_length=64, blank=True)
    decision_source = models.CharField(max_length=8, choices=DecisionSource.choices, blank=True)
    decision_confidence = models.FloatField(null=True, blank=True)
    decision_model_version = models.ForeignKey(
        "modelops.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    # The human label (ground truth), from the verdicts that decided the case or from an
    # audit of a model-decided case. Accuracy is measured on (prediction, human_label).
    human_label = models.CharField(max_length=64, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_label = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="case_external_id_unique_per_workflow",
            ),
        ]
        indexes = [
            models.Index(fields=["workflow", "status", "created_at"]),
            # The near-copy lookup (D143, D150): the exact hash, and each band of its
            # digits (PHASH_BANDS), by key (PhashKey), in time within a key.
            models.Index(
                PhashKey(models.F("phash")),
                models.F("created_at"),
                models.F("id"),
                name="case_phash_key",
            ),
            *(
                models.Index(
                    PhashKey(Substr("phash", start, length)),
                    models.F("created_at"),
                    models.F("id"),
                    name=f"case_phash_band_key_{index}",
                )
                for index, (start, length) in enumerate(PHASH_BANDS)
            ),
            models.Index(
                fields=["workflow", "created_at"],
                condition=models.Q(is_gold=True),
                name="case_gold_by_workflow",
            ),
            models.Index(
                fields=["created_at"],
                condition=models.Q(publish_pending=True),
                name="case_publish_pending",
            ),
            # The case list (workflows.selectors.cases_page): each filter that can be rare
            # has an index that ends in the ordering's columns, so a page is a short
            # index range scan however many cases the workflow holds (docs/benchmarks.md).
            models.Index(fields=["workflow", "created_at", "id"], name="case_list_created"),
            models.Index(
                fields=["workflow", "decided_at", "id"],
                condition=models.Q(decided_at__isnull=False),
                name="case_list_decided",
            ),
            models.Index(
                models.F("workflow"),
                case_label_expression(),
                models.F("created_at"),
                name="case_list_label",
            ),
            models.Index(
                fields=["workflow", "decision_source", "created_at"], name="case_list_source"
            ),
            models.Index(
                fields=["workflow", "decision_model_version", "created_at"],
                name="case_list_model_version",
            ),
            models.Index(fields=["workflow", "routed_level", "created_at"], name="case_list_level"),
            models.Index(
                fields=["workflow", "review_reason", "created_at"], name="case_list_reason"
            ),
            # Duplicates (D88): the list of duplicates, and a group's copies (the case
            # page, ?duplicate_of=); partial, as most cases are no copy.
            models.Index(
                fields=["workflow", "created_at", "id"],
                condition=models.Q(duplicate_of__isnull=False),
                name="case_list_duplicate",
            ),
            models.Index(
                fields=["duplicate_of", "created_at", "id"],
                condition=models.Q(duplicate_of__isnull=False),
                name="case_duplicate_copies",
            ),
            # Deadlines still to watch: cases in review whose fallback has not run. A case
            # leaves both indexes when it is decided, so they hold the live few, never the
            # history (D135).
            models.Index(
                fields=["deadline_at"],
                condition=models.Q(
                    deadline_at__isnull=False,
                    deadline_fallback_at__isnull=True,
                    status="in_review",
                ),
                name="case_deadline_due",
            ),
            # The review claim's first part: a workflow's pending deadlines in order
            # (review.claiming.claim_sql, D135).
            models.Index(
                fields=["workflow", "deadline_at", "created_at", "id"],
                condition=models.Q(
                    deadline_at__isnull=False,
                    deadline_fallback_at__isnull=True,
                    status="in_review",
                ),
                name="case_deadline_queue",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.id)


class ActorType(models.TextChoices):
    SYSTEM = "system"
    MODEL = "model"
    USER = "user"


class CaseEvent(models.Model):
    """One change of a case: who or what did it, when, and why."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"])]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.from_status}->{self.to_status}"


class Prediction(models.Model):
    """What one model version said about one case. One per (case, model version)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        "modelops.ModelVersion", on_delete=models.PROTECT, related_name="predictions"
    )
    role = models.CharField(max_length=16)
    scores = models.JSONField()
    label = models.CharField(max_length=64)
    confidence = models.FloatField()
    latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "model_version"], name="one_prediction_per_case_and_version"
            ),
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.case_id}: {self.label} {self.confidence:.3f}"


class WorkerHeartbeat(models.Model):
    """One worker process that processes cases, and when it was last seen alive.

    Each pool process writes its row every ``LOOPGATE_WORKER_HEARTBEAT_SECONDS`` and when
    it claims a batch. The readiness probe reads it (is any worker taking cases?), and a
    case claimed by a process whose row went stale is taken over by another worker.
    """

    # hostname:pid:random, so a reused pid is a new worker.
    name = models.CharField(max_length=255, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(db_index=True)
    last_claim_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return self.name


class PeriodicRun(models.Model):
    """When a periodic (beat-scheduled) task last ran.

    The readiness probe reads it: a scheduler that stopped looks like an idle one from
    everywhere else, yet without it stalled cases are never queued again.
    """

    name = models.CharField(max_length=100, unique=True)
    last_run_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.last_run_at:%Y-%m-%d %H:%M:%S}"
