"""Celery tasks for the review queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def assignments_expire() -> int:
    """End the leases that ran out, returning their tasks to the queue."""
    from review.services import assignments_expire as expire

    return expire()
