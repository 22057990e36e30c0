"""Settings for the test suite: the real settings, with test-only defaults for secrets.

Environment variables still win (the test command points DATABASE_URL at PostgreSQL and
CELERY_BROKER_URL at Redis). Tasks run eagerly unless a test starts a real worker.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("LOOPGATE_VAR_DIR", tempfile.mkdtemp(prefix="loopgate-test-var-"))
# Throttle counts in memory: one test process, nothing left behind between runs.
os.environ.setdefault("LOOPGATE_CACHE_URL", "locmem://")

from loopgate.settings import *  # noqa: F403
