from django.contrib import admin

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

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["workflow", "kind", "state", "created_at", "resolved_at", "message"]
    list_filter = ["state", "kind"]
    readonly_fields = ["workflow", "kind", "created_at", "message", "data"]
