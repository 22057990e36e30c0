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


def env_prepare_threshold(name: str, default: int = 5) -> int | None:
    """How many runs of a statement on one connection before psycopg prepares it: a
    whole number, or ``off`` (never)."""
    value = os.environ.get(name, str(default)).strip().lower()
    if value in {"off", "none"}:
        return None
    if not value.isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number or 'off', not {value!r}")
    return int(value)


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
    "loopgate.admin_apps.LoopgateAdminConfig",  # django.contrib.admin, superusers only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "csp",
    "loopgate",
    "accounts",
    "modelops",
    "workflows",
    "integrations",
    "review",
    "automation",
    "monitoring",
    "processing",
    "workspace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A cached access row read twice in one request is fetched once (D142).
    "kernel.readcache.RequestMemoMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into its response.
    "axes.middleware.AxesMiddleware",
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
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that polls the socket instead of a round
    # trip on every request (D146).
    DATABASES["default"]["ENGINE"] = "kernel.postgresql"
    # Parameters travel apart from the statement (server-side binding), and a statement a
    # connection runs for the fifth time is prepared: PostgreSQL plans it once, not on
    # every execution (D151). Behind a pooler in transaction mode, where a connection's
    # prepared statements do not follow the client, set DATABASE_PREPARE_THRESHOLD=off.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "server_side_binding": True,
            "prepare_threshold": env_prepare_threshold("DATABASE_PREPARE_THRESHOLD"),
        }
    )
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
AUTHENTICATION_BACKENDS = [
    # First: refuses a login while the account is locked out from this client.
    "accounts.backends.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_REDIRECT_URL = "review:home"
LOGOUT_REDIRECT_URL = "login"

# --- Email ------------------------------------------------------------------------------
# Only invitations send email: a new member's one-time set-password link, which the
# inviting admin is shown anyway. Without DJANGO_EMAIL_HOST (or another backend) nothing is
# sent. The link works once, for PASSWORD_RESET_TIMEOUT seconds (Django's default: 3 days).
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "loopgate@localhost")
LOOPGATE_EMAIL_CONFIGURED = bool(os.environ.get("DJANGO_EMAIL_HOST")) or (
    EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend"
)

# --- Security (production) ----------------------------------------------------------
# Behind a TLS-terminating proxy (DJANGO_BEHIND_TLS_PROXY=1) the proxy's
# X-Forwarded-Proto is trusted, plain HTTP is redirected to HTTPS, cookies are secure
# and browsers are told to use HTTPS only (HSTS). The proxy must set (not pass on) the
# header. /healthz and /readyz stay reachable over plain HTTP for the orchestrator's probes.
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=not DEBUG or BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", 365 * 24 * 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Joining the browsers' preload list binds every subdomain to HTTPS for months and
    # is slow to undo: an operator opts in. Until then the check's reminder is silenced.
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Content Security Policy (django-csp 4): no inline script and no inline style anywhere
# in the product's pages; everything from this origin. The API docs page alone loads
# Swagger UI from its CDN (loopgate.urls).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Login lockout (django-axes) on /login/ and /admin/login/: after
# LOOPGATE_LOGIN_FAILURE_LIMIT failed logins for one username from one client address,
# that pair is refused, the right password too, for LOOPGATE_LOGIN_COOLOFF_MINUTES (429).
# Failures are counted per pair, so a wrong-password flood against one account from
# one address cannot lock its owner out everywhere.
AXES_ENABLED = env_bool("LOOPGATE_LOGIN_LOCKOUT", default=True)
AXES_FAILURE_LIMIT = int(os.environ.get("LOOPGATE_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = float(os.environ.get("LOOPGATE_LOGIN_COOLOFF_MINUTES", "15")) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
# Behind proxies, the client's address is the X-Forwarded-For entry the outermost of
# our LOOPGATE_PROXY_COUNT proxies added (entries further left can be forged).
PROXY_COUNT = int(os.environ.get("LOOPGATE_PROXY_COUNT", "1" if BEHIND_TLS_PROXY else "0"))
AXES_CLIENT_IP_CALLABLE = "loopgate.throttling.client_ip"

# /metrics: a Prometheus scraper sends "Authorization: Bearer <LOOPGATE_METRICS_TOKEN>";
# unset, only a staff session may read it.
LOOPGATE_METRICS_TOKEN = os.environ.get("LOOPGATE_METRICS_TOKEN", "")

# --- Cache (API throttling) ---------------------------------------------------------
# The throttle counts live in Django's cache, which must be shared by every web process:
# Redis when LOOPGATE_CACHE_URL names it (production), else files under var/ (the
# embedded default: gunicorn runs several processes, and a per-process memory cache would
# multiply every rate by their number; a database cache would add a write per request to
# SQLite's single writer). "locmem://" is for tests.
CACHE_URL = os.environ.get("LOOPGATE_CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "kernel.rediscache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "loopgate",
        }
    }
elif CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif CACHE_URL and not CACHE_URL.startswith("file://"):
    raise ImproperlyConfigured(
        f"LOOPGATE_CACHE_URL {CACHE_URL!r}: use redis://, rediss://, file:///path or locmem://"
    )
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": CACHE_URL.removeprefix("file://") or str(VAR_DIR / "cache"),
        }
    }

# --- Access cache (D125) --------------------------------------------------------------
# The rows that authorise a request (API token and user, workflow, membership) are kept
# in the cache above for at most this long; every write of them invalidates them at once
# (kernel.readcache), so this only bounds what a write outside the ORM (raw SQL) leaves.
LOOPGATE_ACCESS_CACHE_SECONDS = int(os.environ.get("LOOPGATE_ACCESS_CACHE_SECONDS", 60))
# After an invalidation, readers may not cache the key again for this long, so a reader
# that loaded the old row just before the write committed cannot put it back.
LOOPGATE_ACCESS_CACHE_SETTLE_SECONDS = int(
    os.environ.get("LOOPGATE_ACCESS_CACHE_SETTLE_SECONDS", 5)
)

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
# Repeated images (docs/decisions.md D56, D143): a new case whose 64-bit perceptual hash
# equals that of an earlier case of the workflow, or is within this Hamming distance of
# one, is linked to the first such case and counts once. 4 bits: distinct demo images are
# >= 8 bits apart, re-encoded copies ~1. The lookup reads the cases that share a band of
# the hash's digits (workflows.models.PHASH_BANDS, five bands: at most 4 bits); where a
# band is crowded, the newest LOOPGATE_DUPLICATE_NEAR_WINDOW cases of each band.
LOOPGATE_DUPLICATE_MAX_DISTANCE = int(os.environ.get("LOOPGATE_DUPLICATE_MAX_DISTANCE", 4))
if not 0 <= LOOPGATE_DUPLICATE_MAX_DISTANCE <= 4:
    raise ImproperlyConfigured(
        f"LOOPGATE_DUPLICATE_MAX_DISTANCE {LOOPGATE_DUPLICATE_MAX_DISTANCE}: use 0 to 4 bits "
        "(the near-copy lookup's five bands find every copy up to 4 bits apart)"
    )
LOOPGATE_DUPLICATE_NEAR_WINDOW = int(os.environ.get("LOOPGATE_DUPLICATE_NEAR_WINDOW", 200))
if LOOPGATE_DUPLICATE_NEAR_WINDOW < 1:
    raise ImproperlyConfigured(
        f"LOOPGATE_DUPLICATE_NEAR_WINDOW {LOOPGATE_DUPLICATE_NEAR_WINDOW}: use 1 or more cases"
    )

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per API token (its own rate, or "token"), per session user ("user"), per client
    # address for anonymous requests ("anon"); 429 with Retry-After beyond the rate.
    "DEFAULT_THROTTLE_CLASSES": [
        "loopgate.throttling.ApiTokenRateThrottle",
        "loopgate.throttling.SessionUserRateThrottle",
        "loopgate.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": os.environ.get("LOOPGATE_THROTTLE_TOKEN_RATE", "6000/min"),
        "user": os.environ.get("LOOPGATE_THROTTLE_USER_RATE", "1200/min"),
        "anon": os.environ.get("LOOPGATE_THROTTLE_ANON_RATE", "120/min"),
    },
    # The client address for the anonymous rate: the proxy's entry when behind one.
    "NUM_PROXIES": PROXY_COUNT,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kernel.exceptions.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": [
        "kernel.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "kernel.parsers.StrictMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "kernel.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loopgate API",
    "DESCRIPTION": "Submit cases, read decisions, review, and steer automation levels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs page are for people and systems that hold an account.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # A member's role and a deployment's role are both "role": name each enum.
    # A case's status appears in several components (a case, a case in the list).
    "ENUM_NAME_OVERRIDES": {
        "MemberRoleEnum": "workspace.services.ROLES",
        "CaseStatusEnum": "workflows.models.CaseStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "kernel.openapi.add_error_responses",
    ],
}

# --- Celery ---------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, publishing atomically and setting malformed message
    # files aside in broker/bad instead of dying on them (loopgate/broker.py, D17).
    CELERY_BROKER_TRANSPORT = "loopgate.broker:Transport"
    for folder in ("queue", "control", "claimed", "bad"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "claim_folder": str(BROKER_DIR / "claimed"),
        "bad_folder": str(BROKER_DIR / "bad"),
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
# Celery's Django fix-up closes every database connection before and after each task
# unless this is set: a new PostgreSQL backend (and its cold catalog caches) for every
# drain. With it, the fix-up closes them only every this many tasks, and each task
# starts and ends with Django's own request discipline instead (``close_old_connections``
# in loopgate/celery.py: ``CONN_MAX_AGE``, a connection left broken is closed, the
# health check before the next query; D148).
CELERY_DB_REUSE_MAX = 1000
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
    **{
        f"processing.tasks.{name}": {
            "queue": os.environ.get("LOOPGATE_INFERENCE_QUEUE", "inference")
        }
        for name in ("workflow_drain", "cases_process", "case_process")
    },
    "modelops.tasks.*": {"queue": os.environ.get("LOOPGATE_TRAINING_QUEUE", "training")},
}
SWEEP_INTERVAL_SECONDS = float(os.environ.get("LOOPGATE_SWEEP_INTERVAL_SECONDS", "30"))
CELERY_BEAT_SCHEDULE = {
    "requeue-stalled-cases": {
        "task": "processing.tasks.cases_requeue_stalled",
        "schedule": SWEEP_INTERVAL_SECONDS,
        # Recorded as a periodic run, so /readyz can tell a stopped scheduler.
        "kwargs": {"periodic": True},
    },
    "publish-pending-cases": {
        "task": "processing.tasks.cases_publish_pending",
        "schedule": float(os.environ.get("LOOPGATE_PUBLISH_RETRY_SECONDS", "5")),
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
    "cases-deadline-fallback": {
        "task": "processing.tasks.cases_deadline_fallback",
        "schedule": float(os.environ.get("LOOPGATE_DEADLINE_CHECK_SECONDS", "5")),
    },
    "webhooks-dispatch": {
        "task": "integrations.tasks.webhooks_dispatch",
        "schedule": float(os.environ.get("LOOPGATE_WEBHOOK_DISPATCH_SECONDS", "5")),
    },
    # Drift and the label-free accuracy estimate (monitoring); each workflow is checked
    # once enough new cases were measured (MonitoringSettings.check_every).
    "monitoring-drift-check": {
        "task": "monitoring.tasks.monitoring_check_all",
        "schedule": float(os.environ.get("LOOPGATE_MONITORING_CHECK_SECONDS", "60")),
    },
}

# Per-case monitoring measurements in the worker (image statistics, model output,
# embedding): on unless LOOPGATE_MONITORING=0 (bench/throughput.py compares both).
LOOPGATE_MONITORING = os.environ.get("LOOPGATE_MONITORING", "1") != "0"

# --- Loopgate -------------------------------------------------------------------------
LOOPGATE_INFERENCE_DEVICE = os.environ.get("LOOPGATE_INFERENCE_DEVICE", "auto")
LOOPGATE_INFERENCE_BATCH_SIZE = int(os.environ.get("LOOPGATE_INFERENCE_BATCH_SIZE", "16"))
# A workflow's drain (processing.services.workflow_drain) claims batches of up to
# LOOPGATE_INFERENCE_BATCH_SIZE waiting cases until none wait; after this long it wakes
# a successor instead, so one message never holds a worker for long (D120).
LOOPGATE_DRAIN_MAX_SECONDS = float(os.environ.get("LOOPGATE_DRAIN_MAX_SECONDS", "10"))
# How long a drain waits before its first claim when it starts less than this long after
# the worker's previous drain of the workflow ended (cases arriving steadily), so that
# they form one batch instead of a drain each; after a quiet spell a case is claimed at
# once. 0: never wait (D149).
LOOPGATE_INFERENCE_BATCH_WAIT_MS = float(os.environ.get("LOOPGATE_INFERENCE_BATCH_WAIT_MS", "15"))
# A wake-up flag ("a drain of this workflow is queued", processing.wakeups) expires after
# this long, so a flag whose message was lost holds no case back for longer.
LOOPGATE_WAKEUP_TTL_SECONDS = float(os.environ.get("LOOPGATE_WAKEUP_TTL_SECONDS", "30"))
# CPU threads per worker process for every model; unset: the policy in
# inference.devices.cpu_threads_policy (one for a small model, else the process's share
# of the cores). See docs/decisions.md D78 and docs/scaling-out.md.
# The sandboxed load check of a model file at registration (and its runtime check): how
# long it may take, wall clock and CPU. A large model on a busy host needs more.
LOOPGATE_MODEL_CHECK_TIMEOUT_SECONDS = float(
    os.environ.get("LOOPGATE_MODEL_CHECK_TIMEOUT_SECONDS", "120")
)
LOOPGATE_TORCH_THREADS = (
    int(os.environ["LOOPGATE_TORCH_THREADS"]) if os.environ.get("LOOPGATE_TORCH_THREADS") else None
)
# Each worker process loads the deployed models when it starts, so the first case does
# not wait for a model load.
LOOPGATE_WARM_MODELS = env_bool("LOOPGATE_WARM_MODELS", default=True)
# A case still "received" or "processing" after this long was dropped by a broker or a
# worker; the periodic sweeper queues it again (processing is idempotent).
LOOPGATE_STALLED_AFTER_SECONDS = int(os.environ.get("LOOPGATE_STALLED_AFTER_SECONDS", "120"))
# Each worker process records a heartbeat this often; a case claimed by a process whose
# heartbeat is older than the lease (or, on the same host, whose pid is gone) is taken
# over by the next delivery or sweep without waiting for the stall time.
# After a worker reconnects to its broker (which may have restarted and lost its
# messages), the cases waiting longer than this are queued again once.
LOOPGATE_RECONNECT_REQUEUE_SECONDS = float(
    os.environ.get("LOOPGATE_RECONNECT_REQUEUE_SECONDS", "5")
)
LOOPGATE_WORKER_HEARTBEAT_SECONDS = float(os.environ.get("LOOPGATE_WORKER_HEARTBEAT_SECONDS", "5"))
LOOPGATE_WORKER_LEASE_SECONDS = int(os.environ.get("LOOPGATE_WORKER_LEASE_SECONDS", "30"))
# /readyz says not ready when a case has waited this long in "received" and no worker
# has claimed a batch for as long.
LOOPGATE_READY_MAX_WAIT_SECONDS = int(os.environ.get("LOOPGATE_READY_MAX_WAIT_SECONDS", "30"))
# /readyz fails when the periodic sweep (celery beat) has not run for this long: without
# it, stalled cases are never queued again and review leases never expire.
LOOPGATE_READY_MAX_SCHEDULER_SILENCE_SECONDS = int(
    os.environ.get(
        "LOOPGATE_READY_MAX_SCHEDULER_SILENCE_SECONDS",
        str(int(max(90, 4 * SWEEP_INTERVAL_SECONDS))),
    )
)
LOOPGATE_REVIEW_LEASE_SECONDS = int(os.environ.get("LOOPGATE_REVIEW_LEASE_SECONDS", "300"))
LOOPGATE_UNDO_WINDOW_SECONDS = int(os.environ.get("LOOPGATE_UNDO_WINDOW_SECONDS", "30"))

# --- Integrations ----------------------------------------------------------------------
# Hosts (names, addresses or networks) webhooks may reach although they resolve to a
# loopback, private or link-local address: comma separated. The demo allows 127.0.0.1.
LOOPGATE_WEBHOOK_ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("LOOPGATE_WEBHOOK_ALLOWED_HOSTS", "").split(",")
    if host.strip()
]
LOOPGATE_WEBHOOKS_PER_WORKFLOW = int(os.environ.get("LOOPGATE_WEBHOOKS_PER_WORKFLOW", "20"))
# After this many failed attempts a delivery is dead until redelivered.
LOOPGATE_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("LOOPGATE_WEBHOOK_MAX_ATTEMPTS", "8"))
# Wait after the n-th failure: base x 2^(n-1) seconds, at most the maximum
# (5 s, 10 s, 20 s ... by default; eight attempts span about ten minutes).
LOOPGATE_WEBHOOK_BACKOFF_BASE_SECONDS = float(
    os.environ.get("LOOPGATE_WEBHOOK_BACKOFF_BASE_SECONDS", "5")
)
LOOPGATE_WEBHOOK_BACKOFF_MAX_SECONDS = float(
    os.environ.get("LOOPGATE_WEBHOOK_BACKOFF_MAX_SECONDS", "3600")
)
LOOPGATE_WEBHOOK_CONNECT_TIMEOUT_SECONDS = float(
    os.environ.get("LOOPGATE_WEBHOOK_CONNECT_TIMEOUT_SECONDS", "3")
)
LOOPGATE_WEBHOOK_READ_TIMEOUT_SECONDS = float(
    os.environ.get("LOOPGATE_WEBHOOK_READ_TIMEOUT_SECONDS", "5")
)
# POST …/cases/?wait=N: the longest a request may wait for its case's routing. Each
# waiting request holds a web thread (not a database connection) for up to this long.
LOOPGATE_CASE_WAIT_MAX_SECONDS = min(
    int(os.environ.get("LOOPGATE_CASE_WAIT_MAX_SECONDS", "30")), 300
)
# Bulk ingest: items and bytes (all images together) in one request.
LOOPGATE_BULK_MAX_ITEMS = int(os.environ.get("LOOPGATE_BULK_MAX_ITEMS", "1000"))
LOOPGATE_BULK_MAX_BYTES = int(os.environ.get("LOOPGATE_BULK_MAX_BYTES", str(200 * 1024 * 1024)))
# Django refuses a multipart body with more files than this (default 100).
DATA_UPLOAD_MAX_NUMBER_FILES = LOOPGATE_BULK_MAX_ITEMS + 1

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOOPGATE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
