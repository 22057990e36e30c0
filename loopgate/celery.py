"""The Celery application: inference, training and periodic checks run here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")

app = Celery("loopgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
