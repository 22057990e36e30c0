"""The Django admin shows the model lifecycle read-only: registering, deploying, promoting
and retraining go through the models page, the API or ``register_model``, which run the
load check and write the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from modelops.models import (
    Deployment,
    DeploymentEvent,
    ModelVersion,
    RetrainRule,
    SaliencyMap,
    TrainingRun,
    TrainingRunEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "workflow", "architecture", "source", "sha256", "created_at"]
    list_filter = ["source", "architecture"]


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["workflow", "model_version", "role", "traffic_share", "active", "created_at"]
    list_filter = ["workflow", "role", "active"]


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "workflow",
        "action",
        "role",
        "from_version",
        "to_version",
        "actor",
    ]
    list_filter = ["workflow", "action"]


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "workflow", "status", "trigger", "architecture", "seed", "created_at"]
    list_filter = ["workflow", "status"]


@admin.register(TrainingRunEvent)
class TrainingRunEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "from_status", "to_status", "actor_type", "actor", "created_at"]
    list_filter = ["to_status", "actor_type"]


@admin.register(RetrainRule)
class RetrainRuleAdmin(ReadOnlyAdmin):
    list_display = ["workflow", "enabled", "every_n_labels", "after_step_down"]


@admin.register(SaliencyMap)
class SaliencyMapAdmin(ReadOnlyAdmin):
    list_display = ["case", "model_version", "label", "status", "computed_at"]
    list_filter = ["status"]
