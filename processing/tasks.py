"""Celery tasks for cases. They take IDs, re-fetch, and call a service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from processing import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def workflow_drain(workflow_id: int) -> int:
    """Score and route the workflow's waiting cases in batches until none wait.

    Published by a coalesced wake-up (``services.workflow_wake``), one per burst of cases
    rather than one per case. Idempotent (see ``services.workflow_drain``), so acks_late
    with reject-on-worker-lost is safe: a worker killed mid-batch hands the message back
    and nothing is decided twice.
    """
    return services.workflow_drain(workflow_id=workflow_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def cases_process(case_ids: list[str]) -> int:
    """Score and route these cases (the sweeper's retries of stalled cases, by id)."""
    return services.cases_process(case_ids=case_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def case_process(case_id: str) -> int:
    """A message of the earlier one-message-per-case protocol, still queued at an upgrade:
    processed as a batch of one."""
    return services.cases_process(case_ids=[case_id])


@shared_task(ignore_result=True)
def cases_requeue_stalled(received_older_than: float | None = None, periodic: bool = False) -> int:
    """Queue again the cases a lost message or a dead worker left behind.

    ``received_older_than`` (seconds) shortens the wait for ``received`` cases: after a
    reconnection to a broker that may have lost its messages. ``periodic`` marks the
    scheduler's call, recorded for the readiness probe. One message per batch of
    stalled cases.
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
    size = max(1, settings.LOOPGATE_INFERENCE_BATCH_SIZE)
    for start in range(0, len(stalled), size):
        cases_process.delay(stalled[start : start + size])
    services.cases_mark_requeued(case_ids=stalled)
    services.worker_heartbeats_prune(older_than=timedelta(days=1))
    return len(stalled)


@shared_task(ignore_result=True)
def cases_publish_pending() -> int:
    """Wake the workflows of the cases whose wake-up the broker refused at ingest."""
    return services.cases_publish_pending()


@shared_task(ignore_result=True)
def cases_deadline_fallback() -> int:
    """Periodic: apply the workflow's fallback to cases in review past their deadline."""
    from processing.deadlines import cases_deadline_fallback as apply

    return apply()
