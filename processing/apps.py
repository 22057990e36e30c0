from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    """The case pipeline: ingest, scoring, routing, and its recovery from faults."""

    name = "processing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from processing.waiting import cases_routed_publish
        from workflows.hooks import on_case_moved

        # A request waiting for its case's routing (?wait=N) is woken when it commits.
        on_case_moved(cases_routed_publish)
