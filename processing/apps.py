from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    """The case pipeline: ingest, scoring, routing, and its recovery from faults."""

    name = "processing"
    default_auto_field = "django.db.models.BigAutoField"
