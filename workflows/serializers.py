"""Output serializers for workflows and cases (the public contract's shapes)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kernel.serializers import ModelSerializer, Serializer
from workflows.access import HIDDEN, CaseVisibility
from workflows.models import Case, CaseEvent, CaseStatus, Prediction


def visibility_of(serializer: serializers.BaseSerializer[Any]) -> CaseVisibility:
    """The ``visibility`` in the serializer's context; HIDDEN when none was given.

    Rendering a case without saying what the caller may see shows nothing the model
    said: the default fails closed.
    """
    visibility = serializer.context.get("visibility")
    return visibility if isinstance(visibility, CaseVisibility) else HIDDEN


class PredictionOutput(ModelSerializer):
    model_version = serializers.CharField(source="model_version.tag")

    class Meta:
        model = Prediction
        fields = [
            "model_version",
            "role",
            "label",
            "confidence",
            "scores",
            "latency_ms",
            "created_at",
        ]


class DecisionOutput(Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    source = serializers.ChoiceField(choices=["model", "human", "fallback"])  # type: ignore[assignment]  # field, not the attribute (stubs)
    confidence = serializers.FloatField(allow_null=True)
    model_version = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField()
    level = serializers.CharField()
    threshold = serializers.FloatField(allow_null=True)


class RoutingOutput(Serializer):
    level = serializers.CharField()
    threshold = serializers.FloatField(allow_null=True)
    review_reason = serializers.CharField(allow_null=True)
    audit = serializers.BooleanField()
    suggestion_visible = serializers.BooleanField()


class ImageOutput(Serializer):
    format = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    phash = serializers.CharField(help_text="64-bit perceptual hash, 16 hex digits.")


class CaseOutput(Serializer):
    """A case. What reveals the model's output (predictions, the model's decision,
    routing and review reason) is null or empty for a reader who may not see it: a
    reviewer in shadow mode, on a blind audit or on a gold case."""

    # Every field declared, in the order the API shows them, none derived from the model:
    # a ModelSerializer works its fields out from the model on every instantiation, a cost
    # paid on every ingest (D138).
    # Rendered with context={"visibility": workflows.access.case_visibility(...)};
    # without it nothing the model said is shown (the default is HIDDEN). An optional
    # "predictions" (a list) is what the caller already read of the case's predictions.

    id = serializers.UUIDField(read_only=True)
    workflow = serializers.CharField(source="workflow.slug")
    external_id = serializers.CharField(allow_null=True, max_length=255, required=False)
    status = serializers.ChoiceField(choices=CaseStatus.choices, required=False)
    metadata = serializers.JSONField(required=False)
    image = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    decision = serializers.SerializerMethodField()
    routing = serializers.SerializerMethodField()
    review_reason = serializers.SerializerMethodField()
    predictions = serializers.SerializerMethodField()
    failure_reason = serializers.CharField()
    deadline_at = serializers.DateTimeField(allow_null=True, required=False)
    duplicate_of = serializers.SerializerMethodField(
        help_text="The first case of the workflow with the same or a nearly identical image "
        "(it counts once in evidence, calibration, comparison, audits and splits); null "
        "when the image is new, or for a reader who may not see the routing (a reviewer "
        "must not look up an earlier verdict of the same image)."
    )

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_duplicate_of(self, case: Case) -> str | None:
        if case.duplicate_of_id is None or not visibility_of(self).routing:
            return None
        return str(case.duplicate_of_id)

    @extend_schema_field(ImageOutput)
    def get_image(self, case: Case) -> dict[str, Any]:
        return {
            "format": case.image_format,
            "width": case.image_width,
            "height": case.image_height,
            "bytes": case.image_bytes,
            "sha256": case.image_sha256,
            "phash": case.phash,
        }

    @extend_schema_field(DecisionOutput(allow_null=True))
    def get_decision(self, case: Case) -> dict[str, Any] | None:
        if not case.decision_source or case.decided_at is None:
            return None
        visibility = visibility_of(self)
        # A fallback decision may be the model's answer: shown like the model's.
        shown = (
            visibility.human_decision
            if case.decision_source == "human"
            else visibility.model_decision
        )
        if not shown:
            return None
        return {
            "label": case.decision_label,
            "source": case.decision_source,
            "confidence": case.decision_confidence,
            "model_version": case.decision_model_version.tag
            if case.decision_model_version
            else None,
            "decided_at": case.decided_at,
            "level": case.routed_level,
            "threshold": case.routed_threshold,
        }

    @extend_schema_field(RoutingOutput(allow_null=True))
    def get_routing(self, case: Case) -> dict[str, Any] | None:
        if not case.routed_level or not visibility_of(self).routing:
            return None
        return {
            "level": case.routed_level,
            "threshold": case.routed_threshold,
            "review_reason": case.review_reason or None,
            "audit": case.review_reason == "audit",
            "suggestion_visible": case.suggestion_visible,
        }

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_review_reason(self, case: Case) -> str | None:
        if not visibility_of(self).routing:
            return None
        return case.review_reason or None

    @extend_schema_field(PredictionOutput(many=True))
    def get_predictions(self, case: Case) -> list[dict[str, Any]]:
        if not visibility_of(self).predictions:
            return []
        # A caller that knows the predictions already (none, for a case it has just
        # created) passes them, and no query is made.
        known = self.context.get("predictions")
        predictions = (
            known if known is not None else case.predictions.select_related("model_version")
        )
        # many=True builds a ListSerializer, whose data is a list; the stubs say ReturnDict.
        return PredictionOutput(predictions, many=True).data  # type: ignore[return-value]


class CaseEventOutput(ModelSerializer):
    """A change of the case. A reader who may not see the model's output sees that the
    case moved, not what the model said or why: ``data`` is empty and only people's
    reasons for status changes remain."""

    # Rendered with context={"visibility": ...}; without it, as for such a reader.

    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)

    class Meta:
        model = CaseEvent
        fields = [
            "created_at",
            "kind",
            "from_status",
            "to_status",
            "actor_type",
            "actor",
            "reason",
            "data",
        ]

    def to_representation(self, instance: CaseEvent) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not visibility_of(self).event_details:
            data["data"] = {}
            if data["actor_type"] == "model" or data["kind"] != "status":
                data["reason"] = ""
        return data


def shown_label(case: Case, visibility: CaseVisibility) -> tuple[str, str] | None:
    """The case's label (``case_label_expression``) and who gave it ("human" or
    "model"), or ``None`` when it has none or the reader may not see it."""
    if case.human_label:
        return (case.human_label, "human") if visibility.human_decision else None
    if case.decision_label and case.decision_source:
        shown = (
            visibility.model_decision
            if case.decision_source == "model"
            else visibility.human_decision
        )
        return (case.decision_label, case.decision_source) if shown else None
    return None


class CaseSummaryOutput(CaseOutput):
    """A case in the case list: the case without its predictions (one query per page,
    not per case), with its label. Follows the same visibility rule as ``CaseOutput``."""

    label = serializers.SerializerMethodField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    label_source = serializers.SerializerMethodField()

    shown_fields = (
        "id",
        "workflow",
        "external_id",
        "status",
        "metadata",
        "image",
        "created_at",
        "updated_at",
        "label",
        "label_source",
        "decision",
        "routing",
        "review_reason",
        "failure_reason",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {name: fields[name] for name in self.shown_fields}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_label(self, case: Case) -> str | None:
        shown = shown_label(case, visibility_of(self))
        return shown[0] if shown else None

    @extend_schema_field(
        serializers.CharField(allow_null=True, help_text="Who gave the label: human or model.")
    )
    def get_label_source(self, case: Case) -> str | None:
        shown = shown_label(case, visibility_of(self))
        return shown[1] if shown else None
