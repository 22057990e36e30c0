"""Forget a workflow's cached webhook subscriptions when a webhook changes (D128).

Receivers on the model, so that every writer (the services, the Django admin, a workflow
deleted with its webhooks) invalidates. A new webhook leaves a tombstone too, unlike a new
membership (``kernel.readcache``): a cached list without it would drop its events from the
outbox, not merely refuse a request.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from integrations.models import Webhook
from integrations.services import subscriptions_cache_key
from kernel.readcache import invalidate


def _webhook_changed(sender: Any, instance: Webhook, **_: Any) -> None:
    invalidate([subscriptions_cache_key(instance.workflow_id)])


def connect() -> None:
    post_save.connect(_webhook_changed, sender=Webhook, dispatch_uid="webhooks-cache-save")
    post_delete.connect(_webhook_changed, sender=Webhook, dispatch_uid="webhooks-cache-del")
