"""Reads about workflows and their cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Min
from django.utils import timezone

from workflows.models import Case, CaseStatus, PeriodicRun, WorkerHeartbeat


@dataclass(frozen=True)
class ProcessingBacklog:
    """Ages in seconds, ``None`` when there is nothing to measure: the oldest case waiting
    for a worker, the last batch a worker took, the last worker heartbeat, the last
    periodic sweep."""

    oldest_waiting_age_seconds: float | None
    last_claim_age_seconds: float | None
    last_heartbeat_age_seconds: float | None
    last_sweep_age_seconds: float | None


def processing_backlog() -> ProcessingBacklog:
    """Cases waiting for a worker, and when a worker last took a batch or was seen alive.

    Ages in seconds, ``None`` when there is nothing to measure. Four indexed reads.
    """
    now = timezone.now()
    oldest = Case.objects.filter(status=CaseStatus.RECEIVED).aggregate(oldest=Min("created_at"))
    workers = WorkerHeartbeat.objects.aggregate(claim=Max("last_claim_at"), seen=Max("seen_at"))
    sweep = PeriodicRun.objects.filter(name="requeue-stalled-cases").first()

    def age(moment: datetime | None) -> float | None:
        return (now - moment).total_seconds() if moment else None

    return ProcessingBacklog(
        oldest_waiting_age_seconds=age(oldest["oldest"]),
        last_claim_age_seconds=age(workers["claim"]),
        last_heartbeat_age_seconds=age(workers["seen"]),
        last_sweep_age_seconds=age(sweep.last_run_at if sweep else None),
    )
