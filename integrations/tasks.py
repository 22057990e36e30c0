"""Celery tasks for webhooks. They take IDs and call a service."""

from __future__ import annotations

from celery import shared_task

from integrations import services

BUSY_RETRIES = 3


@shared_task(ignore_result=True)
def webhook_drain(webhook_id: int, busy_retries: int = BUSY_RETRIES) -> int:
    """Send the webhook's due deliveries in order. When another sender holds the webhook,
    look again shortly (it may have finished before this delivery committed)."""
    attempted = services.webhook_drain(webhook_id=webhook_id)
    if (
        attempted == 0
        and busy_retries > 0
        and services.webhook_next_due(webhook_id=webhook_id) == 0
    ):
        webhook_drain.apply_async(args=[webhook_id, busy_retries - 1], countdown=0.5)
    return attempted


@shared_task(ignore_result=True)
def webhooks_dispatch() -> int:
    """Periodic: queue a drain for every webhook with a delivery due (retries after their
    backoff, and any drain message a broker lost)."""
    due = services.webhooks_due()
    for webhook_id in due:
        webhook_drain.delay(webhook_id, 0)
    return len(due)
