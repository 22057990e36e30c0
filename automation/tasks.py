"""Celery tasks for automation checks."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def automation_check_all() -> int:
    """Run the step-down check on every workflow at an automated level."""
    from automation import services

    checker = getattr(services, "automation_check_all", None)
    return checker() if checker else 0
