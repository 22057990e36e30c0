from django.contrib import admin

from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made with ``manage.py token_create`` (the key is shown once); here they
    are listed and can be revoked or given a rate, never read back."""

    list_display = ("name", "user", "key_prefix", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "key_prefix")
    readonly_fields = ("user", "name", "key_prefix", "key_hash", "created_at", "last_used_at")
    fields = (*readonly_fields, "expires_at", "revoked_at", "throttle_rate")

    def has_add_permission(self, request: object) -> bool:
        return False
