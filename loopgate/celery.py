"""The Celery application: inference, training and periodic checks run here."""

import logging
import os
import threading

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")

app = Celery("loopgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_models(**_: object) -> None:
    """Load the deployed models in each new worker process, off the start-up path.

    A pool process must report ready within a few seconds, so the loading runs in a
    thread; the first task waits on the model cache's lock if it arrives sooner.
    """
    from django.conf import settings

    if not settings.LOOPGATE_WARM_MODELS:
        return

    def warm() -> None:
        from django.db import connection

        from modelops.runtime import models_warm

        try:
            models_warm()
        except Exception:  # e.g. a database not migrated yet
            logging.getLogger(__name__).warning("model warm-up skipped", exc_info=True)
        finally:
            connection.close()

    threading.Thread(target=warm, name="loopgate-warm-models", daemon=True).start()
