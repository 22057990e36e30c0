"""Celery tasks for the automation checks: they take ids, re-fetch, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def automation_check_all() -> int:
    """Periodic (Celery beat): the step-down, drift and recovery checks on every workflow."""
    from automation.services import automation_check_all as check_all

    return check_all()


@shared_task(ignore_result=True)
def automation_check_workflow(workflow_id: int) -> int | None:
    """After an audit verdict: the checks on one workflow. Returns the step down's id.

    Idempotent (the service re-reads the evidence under the workflow's row lock), so a
    redelivered message or two verdicts in a row cannot step down twice for one window.
    """
    from automation.services import automation_check_workflow as check

    change = check(workflow_id=int(workflow_id))
    return change.pk if change is not None else None
