"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

from loopgate.celery import app as celery_app


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return False, f"database unreachable: {exc}"
    return True, "ok"


def _check_broker() -> tuple[bool, str]:
    try:
        with Connection(
            celery_app.conf.broker_url,
            transport=celery_app.conf.broker_transport,
            transport_options=celery_app.conf.broker_transport_options or {},
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return False, f"broker unreachable: {exc}"
    return True, "ok"


def _check_models() -> tuple[bool, str]:
    from inference.loader import ModelLoadError
    from modelops.models import DeploymentRole
    from modelops.runtime import loaded_model_of
    from modelops.selectors import deployments_active
    from workflows.models import Workflow

    problems = []
    for workflow in Workflow.objects.all():
        serving = deployments_active(workflow_id=workflow.pk).get(DeploymentRole.SERVING)
        if serving is None:
            continue
        try:
            loaded_model_of(serving.model_version)
        except (ModelLoadError, OSError, ValueError) as exc:
            problems.append(f"{workflow.slug}: {serving.model_version.tag}: {exc}")
    if problems:
        return False, "; ".join(problems)
    return True, "ok"


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and broker answer and every serving model loads."""
    checks: dict[str, Any] = {}
    ok_db, checks["database"] = _check_database()
    ok_broker, checks["broker"] = _check_broker()
    ok_models, checks["models"] = _check_models() if ok_db else (False, "skipped")
    ready = ok_db and ok_broker and ok_models
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )
