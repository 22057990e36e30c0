from django.contrib import admin, messages
from django.http import HttpRequest

from automation.services import POLICY_FIELDS, automation_update
from loopgate.errors import DomainError
from workflows.models import Case, CaseEvent, Prediction, Workflow, WorkflowMembership


class MembershipInline(admin.TabularInline):
    model = WorkflowMembership
    extra = 0


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "level", "confidence_threshold", "audit_rate"]
    inlines = [MembershipInline]
    readonly_fields = ["created_at"]

    def save_model(self, request: HttpRequest, obj: Workflow, form, change: bool) -> None:
        """Policy changes go through the same service as the API: same gate, same log."""
        if not change:
            super().save_model(request, obj, form, change)
            return
        policy_changes = {
            name: getattr(obj, name) for name in POLICY_FIELDS if name in form.changed_data
        }
        other = [name for name in form.changed_data if name not in POLICY_FIELDS]
        if other:
            original = Workflow.objects.get(pk=obj.pk)
            for name in POLICY_FIELDS:
                setattr(obj, name, getattr(original, name))
            obj.save(update_fields=other)
        if policy_changes:
            try:
                automation_update(
                    workflow=obj,
                    actor=request.user,
                    reason="changed in the Django admin",
                    changes=policy_changes,
                    override=request.user.is_superuser and request.POST.get("_override") == "1",
                )
            except DomainError as exc:
                messages.error(request, f"Automation policy not changed: {exc.message}")
            obj.refresh_from_db()


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
