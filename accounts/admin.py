from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken
from accounts.services import api_token_revoke, throttle_rate_validate
from kernel.errors import InvalidInput


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("expires_at", "throttle_rate")

    def clean_throttle_rate(self) -> str:
        try:
            return throttle_rate_validate(self.cleaned_data.get("throttle_rate") or "")
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made with ``manage.py token_create`` (the key is shown once); here they
    are listed, given a rate or an expiry, and revoked — never read back."""

    form = ApiTokenForm
    list_display = ("name", "user", "key_prefix", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "key_prefix")
    readonly_fields = (
        "user",
        "name",
        "key_prefix",
        "key_hash",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = (*readonly_fields, "expires_at", "throttle_rate")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            api_token_revoke(token_id=token.pk)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)
