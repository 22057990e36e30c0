"""The workflow's webhook subscriptions are cached, and every write of a webhook forgets
them (D128): a cached list must never drop an event from the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations import services
from integrations.models import Webhook, WebhookEvent
from tests.integrations.conftest import PUBLIC_URL

pytestmark = pytest.mark.django_db


def emit(home: dict[str, Any]) -> WebhookEvent | None:
    return services.event_emit(
        workflow=home["workflow"], type="level.changed", payload={"level": "shadow"}
    )


def warm(home: dict[str, Any]) -> None:
    """Read the subscriptions outside any transaction of ours, which caches them, once
    the tombstone of an earlier write has settled."""
    key = services.subscriptions_cache_key(home["workflow"].pk)
    cache.delete(key)
    services.subscriptions_cached(home["workflow"].pk)
    assert isinstance(cache.get(key), tuple)


def test_a_cached_read_costs_no_statement(home: dict[str, Any]) -> None:
    services.webhook_create(
        workflow=home["workflow"], url=PUBLIC_URL, events=["level.changed"], actor=home["admin"]
    )
    warm(home)
    with CaptureQueriesContext(connection) as queries:
        assert [events for _, events in services.subscriptions_cached(home["workflow"].pk)] == [
            ["level.changed"]
        ]
    assert len(queries) == 0


def test_a_new_webhook_gets_the_next_event(home: dict[str, Any]) -> None:
    warm(home)  # cached: no webhook
    services.webhook_create(
        workflow=home["workflow"], url=PUBLIC_URL, events=["level.changed"], actor=home["admin"]
    )
    # A tombstone, not merely a deleted key: a reader that loaded the list before the
    # webhook committed cannot put it back.
    services.subscriptions_cached(home["workflow"].pk)
    assert not isinstance(cache.get(services.subscriptions_cache_key(home["workflow"].pk)), tuple)
    assert emit(home) is not None


def test_a_paused_or_unsubscribed_webhook_gets_nothing_more(home: dict[str, Any]) -> None:
    webhook = services.webhook_create(
        workflow=home["workflow"], url=PUBLIC_URL, events=["level.changed"], actor=home["admin"]
    ).webhook
    warm(home)
    services.webhook_update(webhook=webhook, active=False)
    assert emit(home) is None
    services.webhook_update(webhook=webhook, active=True, events=["case.decided"])
    assert emit(home) is None


def test_a_write_outside_the_services_forgets_too(home: dict[str, Any]) -> None:
    """The Django admin, a script: model signals, not the services, invalidate."""
    webhook = services.webhook_create(
        workflow=home["workflow"], url=PUBLIC_URL, events=["level.changed"], actor=home["admin"]
    ).webhook
    warm(home)
    Webhook.objects.get(pk=webhook.pk).delete()
    assert emit(home) is None
