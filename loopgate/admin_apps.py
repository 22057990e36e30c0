"""``django.contrib.admin`` with the superusers-only site (``loopgate.admin_site``) as
``admin.site``. Kept apart from ``loopgate.apps`` so that app has one AppConfig."""

from django.contrib.admin.apps import AdminConfig


class LoopgateAdminConfig(AdminConfig):
    default_site = "loopgate.admin_site.LoopgateAdminSite"
