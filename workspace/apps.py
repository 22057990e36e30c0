from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """Where workflow admins run their workflows: the workflow API and its admin pages."""

    name = "workspace"
    default_auto_field = "django.db.models.BigAutoField"
