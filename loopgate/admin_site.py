"""The Django admin site: for active superusers only.

Workflow admins work in the product's own pages and API, where every read and write is
scoped by membership (``workflows.access``) and every policy change goes through the
evidence gate. The Django admin is not scoped by membership, so a staff flag there
would be a way around both; the site therefore ignores ``is_staff`` and admits only
active superusers, both at the login form and on every page (docs/decisions.md D11).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest


def is_admin_site_user(user: object) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


class SuperuserAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, refusing everyone but active superusers."""

    def confirm_login_allowed(self, user: object) -> None:
        if not is_admin_site_user(user):
            raise ValidationError(
                "The Django admin is for superusers. Workflow admins manage their "
                "workflows on the product's pages and through the API.",
                code="invalid_login",
            )


class LoopgateAdminSite(admin.AdminSite):
    site_header = "Loopgate administration (superusers)"
    site_title = "Loopgate admin"
    login_form = SuperuserAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return is_admin_site_user(request.user)
