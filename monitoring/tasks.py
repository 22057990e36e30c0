"""Celery tasks of monitoring: they take ids, re-fetch, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def monitoring_check_all() -> int:
    """Periodic (Celery beat): the drift check on every workflow whose model runs."""
    from monitoring.services import monitoring_check_all as check_all

    return check_all()
