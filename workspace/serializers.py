"""Output serializers for workflows as the public contract shows them: labels, the
automation policy, and the model versions deployed."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from modelops.models import Deployment
from modelops.selectors import deployments_active
from workflows.models import Workflow


class AutomationPolicyOutput(serializers.Serializer):
    level = serializers.CharField()
    confidence_threshold = serializers.FloatField()
    class_thresholds = serializers.DictField(child=serializers.FloatField(allow_null=True))
    audit_rate = serializers.FloatField()
    target_accuracy = serializers.FloatField()
    target_error = serializers.FloatField()
    min_evidence = serializers.IntegerField()


class DeploymentOutput(serializers.Serializer):
    role = serializers.CharField()
    model_version = serializers.CharField()
    traffic_share = serializers.FloatField()
    since = serializers.DateTimeField()


class WorkflowOutput(serializers.ModelSerializer):
    automation = serializers.SerializerMethodField()
    serving_model_version = serializers.SerializerMethodField()
    deployments = serializers.SerializerMethodField()

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
