from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        from accounts import invalidation, schema  # noqa: F401 - registers the OpenAPI extension

        invalidation.connect()
