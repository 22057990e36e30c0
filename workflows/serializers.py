"""Output serializers for workflows and cases (the public contract's shapes)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from workflows.models import Case, CaseEvent, Prediction


class PredictionOutput(serializers.ModelSerializer):
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


class DecisionOutput(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    source = serializers.ChoiceField(choices=["model", "human"])  # type: ignore[assignment]  # field, not the attribute (stubs)
    confidence = serializers.FloatField(allow_null=True)
    model_version = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField()
    level = serializers.CharField()
    threshold = serializers.FloatField(allow_null=True)


class RoutingOutput(serializers.Serializer):
    level = serializers.CharField()
    threshold = serializers.FloatField(allow_null=True)
    review_reason = serializers.CharField(allow_null=True)
    audit = serializers.BooleanField()
    suggestion_visible = serializers.BooleanField()


class ImageOutput(serializers.Serializer):
    format = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()


class CaseOutput(serializers.ModelSerializer):
    workflow = serializers.CharField(source="workflow.slug")
    image = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()
    routing = serializers.SerializerMethodField()
    review_reason = serializers.SerializerMethodField()
    predictions = serializers.SerializerMethodField()
    failure_reason = serializers.CharField()

    class Meta:
        model = Case
        fields = [
            "id",
            "workflow",
            "external_id",
            "status",
            "metadata",
            "image",
            "created_at",
            "updated_at",
            "decision",
            "routing",
            "review_reason",
            "predictions",
            "failure_reason",
        ]

    @extend_schema_field(ImageOutput)
    def get_image(self, case: Case) -> dict[str, Any]:
        return {
            "format": case.image_format,
            "width": case.image_width,
            "height": case.image_height,
            "bytes": case.image_bytes,
            "sha256": case.image_sha256,
        }

    def _shows_model_output(self) -> bool:
        return bool(self.context.get("show_predictions", True))

    @extend_schema_field(DecisionOutput(allow_null=True))
    def get_decision(self, case: Case) -> dict[str, Any] | None:
        if not case.decision_source or case.decided_at is None:
            return None
        if not self._shows_model_output() and (case.decision_source == "model" or case.is_gold):
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
        if not case.routed_level or not self._shows_model_output():
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
        if not self._shows_model_output():
            return None
        return case.review_reason or None

    @extend_schema_field(PredictionOutput(many=True))
    def get_predictions(self, case: Case) -> list[dict[str, Any]]:
        if not self._shows_model_output():
            return []
        predictions = case.predictions.select_related("model_version").all()
        # many=True builds a ListSerializer, whose data is a list; the stubs say ReturnDict.
        return PredictionOutput(predictions, many=True).data  # type: ignore[return-value]


class CaseEventOutput(serializers.ModelSerializer):
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
