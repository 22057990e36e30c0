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


def _check_workers() -> tuple[bool, str]:
    """Not ready when cases wait and no worker has taken any for as long.

    A platform that accepts cases nobody processes is not working, even if every
    service answers (a dead worker leaves every new case ``received`` for ever).
    """
    from django.conf import settings

    from workflows.selectors import processing_backlog

    limit = settings.LOOPGATE_READY_MAX_WAIT_SECONDS
    backlog = processing_backlog()
    waiting = backlog.oldest_waiting_age_seconds
    last_claim = backlog.last_claim_age_seconds
    if waiting is None or waiting < limit or (last_claim is not None and last_claim < limit):
        return True, "ok"
    heartbeat = backlog.last_heartbeat_age_seconds
    return False, (
        f"cases have waited {waiting:.0f} s for a worker and none has taken a case "
        + ("ever" if last_claim is None else f"for {last_claim:.0f} s")
        + (
            "; no worker heartbeat recorded"
            if heartbeat is None
            else f"; last worker heartbeat {heartbeat:.0f} s ago"
        )
    )


def _check_scheduler() -> tuple[bool, str]:
    """Not ready when the periodic sweep has stopped running (celery beat is down).

    Before its first run there is nothing to judge: a platform that just started is
    not failed for that.
    """
    from django.conf import settings

    from workflows.selectors import processing_backlog

    silence = processing_backlog().last_sweep_age_seconds
    limit = settings.LOOPGATE_READY_MAX_SCHEDULER_SILENCE_SECONDS
    if silence is None or silence < limit:
        return True, "ok"
    return False, (
        f"the periodic sweep last ran {silence:.0f} s ago (limit {limit} s): "
        "is celery beat running?"
    )


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and broker answer, every serving model loads, the cases
    waiting for a worker are being taken, and the periodic sweep is running."""
    checks: dict[str, Any] = {}
    ok_db, checks["database"] = _check_database()
    ok_broker, checks["broker"] = _check_broker()
    ok_models, checks["models"] = _check_models() if ok_db else (False, "skipped")
    ok_workers, checks["workers"] = _check_workers() if ok_db else (False, "skipped")
    ok_scheduler, checks["scheduler"] = _check_scheduler() if ok_db else (False, "skipped")
    ready = ok_db and ok_broker and ok_models and ok_workers and ok_scheduler
    return JsonResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            **({} if ready else {"reason": "; ".join(v for v in checks.values() if v != "ok")}),
        },
        status=200 if ready else 503,
    )
