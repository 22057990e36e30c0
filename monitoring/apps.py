from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from monitoring.metrics import decisions_count
        from workflows.hooks import on_case_moved

        on_case_moved(decisions_count)
