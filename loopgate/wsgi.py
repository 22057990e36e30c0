"""WSGI entry point (gunicorn loopgate.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")

application = get_wsgi_application()


def _load_and_settle() -> None:
    """Import every view now (the URL patterns, as the first request would), then keep
    what the process has loaded out of the collector's full passes (D144)."""
    from django.urls import get_resolver

    from kernel.heap import heap_settle

    get_resolver().url_patterns  # noqa: B018  # imports every app's views
    heap_settle("the web application loaded")


_load_and_settle()
