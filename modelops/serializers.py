"""Output serializers for model versions, deployments, the audit log and training runs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kernel.serializers import ModelSerializer
from modelops.models import Deployment, DeploymentEvent, ModelVersion, TrainingRun


class ModelVersionOutput(ModelSerializer):
    tag = serializers.CharField()
    workflow = serializers.CharField(source="workflow.slug", allow_null=True, default=None)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    weights_bytes = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "tag",
            "name",
            "version",
            "workflow",
            "architecture",
            "arch_kwargs",
            "labels",
            "input_size",
            "mean",
            "std",
            "sha256",
            "weights_bytes",
            "source",
            "runtime",
            "runtime_check",
            "provenance",
            "metrics",
            "created_at",
            "created_by",
        ]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_weights_bytes(self, version: ModelVersion) -> int | None:
        return version.provenance.get("bytes")


class DeploymentRoleOutput(ModelSerializer):
    model_version = serializers.CharField(source="model_version.tag")
    model_version_id = serializers.IntegerField()
    replaces = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "role",
            "model_version",
            "model_version_id",
            "traffic_share",
            "active",
            "replaces",
            "created_at",
            "ended_at",
            "created_by",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_replaces(self, deployment: Deployment) -> str | None:
        replaced = deployment.replaces
        return replaced.model_version.tag if replaced is not None else None


class DeploymentEventOutput(ModelSerializer):
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    from_version = serializers.CharField(source="from_version.tag", allow_null=True, default=None)
    to_version = serializers.CharField(source="to_version.tag", allow_null=True, default=None)

    class Meta:
        model = DeploymentEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "role",
            "from_version",
            "to_version",
            "reason",
            "data",
        ]


class TrainingRunOutput(ModelSerializer):
    workflow = serializers.CharField(source="workflow.slug")
    base_version = serializers.CharField(source="base_version.tag", allow_null=True, default=None)
    result_version = serializers.CharField(
        source="result_version.tag", allow_null=True, default=None
    )
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    epoch = serializers.SerializerMethodField()
    split_sizes = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "workflow",
            "status",
            "trigger",
            "reason",
            "base_version",
            "architecture",
            "input_size",
            "seed",
            "hyperparameters",
            "epochs_total",
            "epoch",
            "progress",
            "cancel_requested",
            "split_sizes",
            "metrics",
            "error",
            "device",
            "result_version",
            "created_by",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]

    @extend_schema_field(serializers.IntegerField())
    def get_epoch(self, run: TrainingRun) -> int:
        return len(run.progress or [])

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_split_sizes(self, run: TrainingRun) -> dict[str, Any]:
        split = run.split or {}
        return {part: len(split.get(part, [])) for part in ("train", "val", "test")}
