from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import invalidation
        from integrations.services import case_events_emit
        from workflows.hooks import on_case_moved

        # A case decided or handed to review is pushed to the workflow's webhooks: the
        # outbox rows are written in the transaction that moved the case.
        on_case_moved(case_events_emit)
        # Every write of a webhook forgets the workflow's cached subscriptions (D128).
        invalidation.connect()
