from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from automation.models import Alert, LevelChange


@admin.register(LevelChange)
class LevelChangeAdmin(admin.ModelAdmin):
    list_display = ["workflow", "created_at", "actor", "automatic", "overridden", "reason"]
    readonly_fields = [
        "workflow",
        "created_at",
        "actor",
        "automatic",
        "overridden",
        "before",
        "after",
        "reason",
        "evidence",
    ]

    # The audit log is written by automation.services only; nobody edits or deletes it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["workflow", "kind", "state", "created_at", "resolved_at", "message"]
    list_filter = ["state", "kind"]
    readonly_fields = ["workflow", "kind", "created_at", "message", "data"]
