from django.contrib import admin

from modelops.models import Deployment, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "architecture", "sha256", "created_at"]
    readonly_fields = ["sha256", "created_at"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["workflow", "model_version", "role", "traffic_share", "active", "created_at"]
    list_filter = ["workflow", "role", "active"]
