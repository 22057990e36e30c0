"""Reads about workflows and their cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Min
from django.utils import timezone

from workflows.models import Case, CaseStatus, WorkerHeartbeat


@dataclass(frozen=True)
class ProcessingBacklog:
    """Ages in seconds, ``None`` when there is nothing to measure: the oldest case waiting
    for a worker, the last batch a worker took, the last worker heartbeat."""

    oldest_waiting_age_seconds: float | None
    last_claim_age_seconds: float | None
    last_heartbeat_age_seconds: float | None


def processing_backlog() -> ProcessingBacklog:
    """Cases waiting for a worker, and when a worker last took a batch or was seen alive.

    Three indexed reads.
    """
    now = timezone.now()
    oldest = Case.objects.filter(status=CaseStatus.RECEIVED).aggregate(oldest=Min("created_at"))
    workers = WorkerHeartbeat.objects.aggregate(claim=Max("last_claim_at"), seen=Max("seen_at"))

    def age(moment: datetime | None) -> float | None:
        return (now - moment).total_seconds() if moment else None

    return ProcessingBacklog(
        oldest_waiting_age_seconds=age(oldest["oldest"]),
        last_claim_age_seconds=age(workers["claim"]),
        last_heartbeat_age_seconds=age(workers["seen"]),
    )
