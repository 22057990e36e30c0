"""The Django admin for workflows and cases (superusers only: ``loopgate.admin_site``).

A workflow's automation policy is read-only on its change form: it changes on the
admin's "automation policy" page, which calls ``automation.services.automation_update``
like the API, the product page and ``manage.py automation_set`` (same gate, same log).
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from workflows.models import Case, CaseEvent, Prediction


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    can_delete = False
    readonly_fields = [
        "model_version",
        "role",
        "label",
        "confidence",
        "scores",
        "latency_ms",
        "created_at",
    ]


class EventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    readonly_fields = [
        "created_at",
        "kind",
        "from_status",
        "to_status",
        "actor_type",
        "actor",
        "reason",
        "data",
    ]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "workflow",
        "external_id",
        "status",
        "decision_label",
        "decision_source",
        "created_at",
    ]
    list_filter = ["workflow", "status", "decision_source", "review_reason", "is_gold"]
    search_fields = ["id", "external_id"]
    readonly_fields = [f.name for f in Case._meta.fields if f.name not in {"is_gold", "gold_label"}]
    inlines = [PredictionInline, EventInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
