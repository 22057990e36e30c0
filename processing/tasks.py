"""Celery tasks for cases. They take IDs, re-fetch, and call a service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from processing import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def case_process(case_id: str) -> int:
    """Score and route one case, batched with other cases waiting in its workflow.

    Idempotent (see services.cases_process), so acks_late with reject-on-worker-lost is
    safe: a worker killed mid-case hands the message back and nothing is decided twice.
    """
    companions = services.case_batch_companions(
        case_id=case_id, limit=settings.LOOPGATE_INFERENCE_BATCH_SIZE - 1
    )
    return services.cases_process(case_ids=[case_id, *companions])


@shared_task(ignore_result=True)
def cases_requeue_stalled(received_older_than: float | None = None, periodic: bool = False) -> int:
    """Queue again the cases a lost message or a dead worker left behind.

    ``received_older_than`` (seconds) shortens the wait for ``received`` cases: after a
    reconnection to a broker that may have lost its messages. ``periodic`` marks the
    scheduler's call, recorded for the readiness probe.
    """
    if periodic:
        services.periodic_run_record(name="requeue-stalled-cases")
    released = services.cases_release_dead_claims()
    stalled = services.cases_stalled(
        older_than=timedelta(seconds=settings.LOOPGATE_STALLED_AFTER_SECONDS),
        received_older_than=None
        if received_older_than is None
        else timedelta(seconds=received_older_than),
    )
    stalled = released + sorted(set(stalled) - set(released))
    for case_id in stalled:
        case_process.delay(case_id)
    services.cases_mark_requeued(case_ids=stalled)
    services.worker_heartbeats_prune(older_than=timedelta(days=1))
    return len(stalled)


@shared_task(ignore_result=True)
def cases_publish_pending() -> int:
    """Publish the processing messages the broker refused when their cases were created."""
    return services.cases_publish_pending()


@shared_task(ignore_result=True)
def cases_deadline_fallback() -> int:
    """Periodic: apply the workflow's fallback to cases in review past their deadline."""
    from processing.deadlines import cases_deadline_fallback as apply

    return apply()
