"""Output serializers for workflows as the public contract shows them: labels, the
automation policy, and the model versions deployed."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kernel.markdown import MAX_MARKDOWN_CHARS
from kernel.serializers import ModelSerializer, Serializer
from modelops.models import Deployment
from modelops.retraining import workflow_augmentation_summary
from modelops.selectors import deployments_active
from workflows.labels import label_keys
from workflows.models import Workflow, WorkflowMembership
from workspace.services import (
    DESCRIPTION_MAX,
    LABEL_MAX,
    LABELS_MAX,
    LABELS_MIN,
    NAME_MAX,
    REVIEW_SETTINGS,
    ROLES,
    SLUG_PATTERN,
    role_of,
)


class AutomationPolicyOutput(Serializer):
    level = serializers.CharField()
    confidence_threshold = serializers.FloatField()
    class_thresholds = serializers.DictField(child=serializers.FloatField(allow_null=True))
    audit_rate = serializers.FloatField()
    target_accuracy = serializers.FloatField()
    target_error = serializers.FloatField()
    min_evidence = serializers.IntegerField()


class DeploymentOutput(Serializer):
    role = serializers.CharField()
    model_version = serializers.CharField()
    traffic_share = serializers.FloatField()
    since = serializers.DateTimeField()


class WorkflowLabelKeyOutput(Serializer):
    # "label" is also an attribute of every DRF field; the class attribute only declares it.
    label = serializers.CharField()  # type: ignore[assignment]
    keys = serializers.ListField(child=serializers.CharField())
    color = serializers.CharField()


class WorkflowOutput(ModelSerializer):
    automation = serializers.SerializerMethodField()
    label_keys = serializers.SerializerMethodField()
    serving_model_version = serializers.SerializerMethodField()
    deployments = serializers.SerializerMethodField()
    training_augmentation_summary = serializers.SerializerMethodField(
        help_text="The augmentation a training run uses unless it names its own, in words; "
        "an empty training_augmentation means the platform's default."
    )

    class Meta:
        model = Workflow
        fields = [
            "slug",
            "name",
            "description",
            "labels",
            "automation",
            "serving_model_version",
            "deployments",
            "consensus_required",
            "gold_rate",
            "review_lease_seconds",
            "skip_delay_seconds",
            "max_skips",
            "hidden_suggestion_rate",
            "instructions",
            "label_settings",
            "label_keys",
            "training_augmentation",
            "training_augmentation_summary",
            "archived_at",
            "created_at",
        ]

    @extend_schema_field(AutomationPolicyOutput)
    def get_automation(self, workflow: Workflow) -> dict[str, Any]:
        return {
            "level": workflow.level,
            "confidence_threshold": workflow.confidence_threshold,
            "class_thresholds": workflow.class_thresholds,
            "audit_rate": workflow.audit_rate,
            "target_accuracy": workflow.target_accuracy,
            "target_error": workflow.target_error,
            "min_evidence": workflow.min_evidence,
        }

    @extend_schema_field(serializers.CharField())
    def get_training_augmentation_summary(self, workflow: Workflow) -> str:
        return workflow_augmentation_summary(workflow)

    @extend_schema_field(WorkflowLabelKeyOutput(many=True))
    def get_label_keys(self, workflow: Workflow) -> list[dict[str, Any]]:
        """The effective keys and colours (the admin's choices, else the defaults)."""
        return [
            {"label": entry.label, "keys": list(entry.keys), "color": entry.color}
            for entry in label_keys(workflow.labels, workflow.label_settings)
        ]

    def _active(self, workflow: Workflow) -> dict[str, Deployment]:
        # One read per workflow however many fields ask (a list shares this serializer).
        cache: dict[int, dict[str, Deployment]] = self.__dict__.setdefault("_deployments", {})
        if workflow.pk not in cache:
            cache[workflow.pk] = deployments_active(workflow_id=workflow.pk)
        return cache[workflow.pk]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_serving_model_version(self, workflow: Workflow) -> str | None:
        serving = self._active(workflow).get("serving")
        return serving.model_version.tag if serving else None

    @extend_schema_field(DeploymentOutput(many=True))
    def get_deployments(self, workflow: Workflow) -> list[dict[str, Any]]:
        return [
            {
                "role": d.role,
                "model_version": d.model_version.tag,
                "traffic_share": d.traffic_share,
                "since": d.created_at,
            }
            for d in self._active(workflow).values()
        ]


# --- Inputs (the services validate; these shapes document the API) ------------------------


class LabelSettingInput(Serializer):
    key = serializers.CharField(required=False, allow_blank=True, help_text="One character.")
    color = serializers.CharField(required=False, allow_blank=True, help_text="#rrggbb")


def _bounded(name: str) -> serializers.Field:
    bound = REVIEW_SETTINGS[name]
    if bound.integer:
        return serializers.IntegerField(
            required=False,
            min_value=int(bound.minimum),
            max_value=int(bound.maximum),
            help_text=bound.text,
        )
    return serializers.FloatField(
        required=False, min_value=bound.minimum, max_value=bound.maximum, help_text=bound.text
    )


class WorkflowUpdateInput(Serializer):
    name = serializers.CharField(required=False, max_length=NAME_MAX)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=DESCRIPTION_MAX
    )
    instructions = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_MARKDOWN_CHARS,
        help_text="Markdown for reviewers; sanitised whenever it is shown.",
    )
    labels = serializers.ListField(
        child=serializers.CharField(max_length=LABEL_MAX),
        required=False,
        min_length=LABELS_MIN,
        max_length=LABELS_MAX,
        help_text="The whole label list: existing labels in their order, new ones appended. "
        "A label with data cannot be removed or renamed (409 label_in_use).",
    )
    label_settings = serializers.DictField(
        child=LabelSettingInput(),
        required=False,
        help_text='Per label: {"ok": {"key": "k", "color": "#2e7d32"}}; replaces the current.',
    )
    consensus_required = _bounded("consensus_required")
    gold_rate = _bounded("gold_rate")
    review_lease_seconds = _bounded("review_lease_seconds")
    skip_delay_seconds = _bounded("skip_delay_seconds")
    max_skips = _bounded("max_skips")
    hidden_suggestion_rate = _bounded("hidden_suggestion_rate")
    training_augmentation = serializers.JSONField(
        required=False,
        help_text='Retraining\'s default augmentation, e.g. {"hflip": false, "vflip": false, '
        '"rotation": 0, "brightness": 0.1, "contrast": 0.1, "colour": 0, "crop": 0}: flips '
        "and rotation on/off and degrees, jitter and crop as shares (0: off). {} or null: "
        "the platform's orientation-safe default. A run may still name its own.",
    )


class WorkflowCreateInput(WorkflowUpdateInput):
    slug = serializers.RegexField(SLUG_PATTERN.pattern, max_length=64)
    name = serializers.CharField(max_length=NAME_MAX)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=LABEL_MAX),
        min_length=LABELS_MIN,
        max_length=LABELS_MAX,
    )


class MembershipOutput(Serializer):
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    role = serializers.SerializerMethodField()
    can_submit = serializers.BooleanField()
    password_set = serializers.SerializerMethodField()

    def get_role(self, membership: WorkflowMembership) -> str:
        return role_of(membership)

    def get_password_set(self, membership: WorkflowMembership) -> bool:
        return membership.user.has_usable_password()


class MembershipCreateInput(Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=list(ROLES))
    email = serializers.EmailField(required=False, allow_blank=True)


class InvitationOutput(MembershipOutput):
    created_account = serializers.BooleanField()
    set_password_url = serializers.CharField(
        allow_null=True,
        help_text="Only when the account was created now: a one-time link to choose a "
        "password. Shown once; it stops working once used.",
    )
    emailed = serializers.BooleanField()


class MemberLinkOutput(Serializer):
    username = serializers.CharField()
    set_password_url = serializers.CharField(help_text="One-time link; shown only here.")


class MembershipUpdateInput(Serializer):
    role = serializers.ChoiceField(choices=list(ROLES))


class WorkflowTokenOutput(Serializer):
    id = serializers.IntegerField(source="token_id")
    name = serializers.CharField(source="token.name")
    prefix = serializers.CharField(source="token.key_prefix")
    account = serializers.CharField(source="account.username")
    created_at = serializers.DateTimeField(source="token.created_at")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    expires_at = serializers.DateTimeField(source="token.expires_at", allow_null=True)
    last_used_at = serializers.DateTimeField(source="token.last_used_at", allow_null=True)
    revoked_at = serializers.DateTimeField(source="token.revoked_at", allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", allow_null=True, default=None)


class WorkflowTokenCreatedOutput(WorkflowTokenOutput):
    key = serializers.CharField(help_text="The key: shown in this response only, never again.")


class WorkflowTokenCreateInput(Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)


class LabelExampleOutput(Serializer):
    """One example image of a label (``LabelExampleInfo``); ``image_url`` serves it to the
    workflow's members."""

    id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    caption = serializers.CharField()
    alt = serializers.CharField(help_text="The image's text alternative: label and caption.")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    byte_size = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    image_url = serializers.SerializerMethodField()

    def get_image_url(self, info: Any) -> str:
        path = reverse("label-example-image", args=[self.context["slug"], info.id])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class LabelExampleCreateInput(Serializer):
    label = serializers.CharField(help_text="One of the workflow's labels.")  # type: ignore[assignment]  # field, not the attribute (stubs)
    image = serializers.FileField(help_text="The image (PNG, JPEG, WebP, BMP or TIFF).")
    caption = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="What to look at."
    )
