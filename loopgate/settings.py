"""Settings, read from the environment.

Local development (``DJANGO_DEBUG=1``) runs on the embedded default: SQLite, local
media storage and a Celery worker over kombu's filesystem transport, so nothing but
Python is needed. Production sets ``DATABASE_URL``, ``CELERY_BROKER_URL`` and
``DJANGO_SECRET_KEY``; no secret has a default outside local development.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LOOPGATE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (or DJANGO_DEBUG=1 for local development)."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else ""
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "loopgate",
    "modelops",
    "workflows",
    "review",
    "automation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "loopgate.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "loopgate.wsgi.application"

# --- Database -------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'loopgate.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker are separate processes: WAL lets readers run beside
    # the writer, and IMMEDIATE transactions take the write lock up front so that two
    # writers queue on the busy timeout instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("LOOPGATE_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "review:home"
LOGOUT_REDIRECT_URL = "login"

# --- Security (production) ----------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_BEHIND_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Uploads ------------------------------------------------------------------------
# The image size limit is enforced by the case service with a clear 413; Django's own
# request limit sits a little above it so that the service gets to say why.
LOOPGATE_MAX_UPLOAD_BYTES = int(os.environ.get("LOOPGATE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))
LOOPGATE_MAX_IMAGE_PIXELS = int(os.environ.get("LOOPGATE_MAX_IMAGE_PIXELS", 40_000_000))
LOOPGATE_ALLOWED_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
LOOPGATE_MAX_METADATA_BYTES = 16 * 1024
LOOPGATE_MAX_JSON_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = LOOPGATE_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "loopgate.exceptions.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": [
        "loopgate.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "loopgate.parsers.StrictMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "loopgate.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loopgate API",
    "DESCRIPTION": "Submit cases, read decisions, review, and steer automation levels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "loopgate.openapi.add_error_responses",
    ],
}

# --- Celery ---------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport expects its folders to exist.
    for folder in ("queue", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The filesystem transport polls. With the default of 1 s, a worker whose
        # prefetch slot is busy sleeps a full second before it looks again, which caps
        # it at about one message a second; 50 ms keeps the idle cost small.
        "polling_interval": float(os.environ.get("LOOPGATE_BROKER_POLL_SECONDS", 0.05)),
    }
else:
    # Longer than the longest task, so that Redis does not hand a running task to a
    # second worker; acks_late tasks that were not acknowledged come back after it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 3 * 3600))
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ROUTES = {
    "workflows.tasks.case_process": {
        "queue": os.environ.get("LOOPGATE_INFERENCE_QUEUE", "inference")
    },
    "modelops.tasks.*": {"queue": os.environ.get("LOOPGATE_TRAINING_QUEUE", "training")},
}
SWEEP_INTERVAL_SECONDS = float(os.environ.get("LOOPGATE_SWEEP_INTERVAL_SECONDS", "30"))
CELERY_BEAT_SCHEDULE = {
    "requeue-stalled-cases": {
        "task": "workflows.tasks.cases_requeue_stalled",
        "schedule": SWEEP_INTERVAL_SECONDS,
    },
    "expire-review-leases": {
        "task": "review.tasks.assignments_expire",
        "schedule": SWEEP_INTERVAL_SECONDS,
    },
    "training-runs-fail-stale": {
        "task": "modelops.tasks.training_runs_fail_stale",
        "schedule": 300.0,
    },
    "retrain-rules-check": {"task": "modelops.tasks.retrain_rules_check", "schedule": 600.0},
    "automation-step-down-check": {
        "task": "automation.tasks.automation_check_all",
        "schedule": 300.0,
    },
}

# --- Loopgate -------------------------------------------------------------------------
LOOPGATE_INFERENCE_DEVICE = os.environ.get("LOOPGATE_INFERENCE_DEVICE", "auto")
LOOPGATE_INFERENCE_BATCH_SIZE = int(os.environ.get("LOOPGATE_INFERENCE_BATCH_SIZE", "16"))
# Each worker process loads the deployed models when it starts, so the first case does
# not wait for a model load.
LOOPGATE_WARM_MODELS = env_bool("LOOPGATE_WARM_MODELS", default=True)
# A case still "received" or "processing" after this long was dropped by a broker or a
# worker; the periodic sweeper queues it again (processing is idempotent).
LOOPGATE_STALLED_AFTER_SECONDS = int(os.environ.get("LOOPGATE_STALLED_AFTER_SECONDS", "120"))
LOOPGATE_REVIEW_LEASE_SECONDS = int(os.environ.get("LOOPGATE_REVIEW_LEASE_SECONDS", "300"))
LOOPGATE_UNDO_WINDOW_SECONDS = int(os.environ.get("LOOPGATE_UNDO_WINDOW_SECONDS", "30"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOOPGATE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
