"""Waiting for a case's routing within the request that created it (``?wait=N``).

When a case moves to ``decided``, ``in_review`` or ``failed``, its id is published on
commit to a Redis channel (``loopgate:case-routed:<id>``, on the broker's Redis). A
request that waits subscribes to its case's channel, reads the case once (it may have
been routed already), then blocks on the subscription until the message or the
deadline: no database query while it waits, one more when it wakes. Without Redis (the
embedded filesystem broker) it polls the case's status with backoff (50 ms doubling
to 1 s), one indexed primary-key read per poll.

A waiting request holds its web thread (not a database transaction) for up to N
seconds: with gunicorn's threaded workers, W workers x T threads serve at most W x T
waiting requests at once, so ``LOOPGATE_CASE_WAIT_MAX_SECONDS`` (default 30) bounds how
long one client can hold a thread; size threads for the expected waiting clients.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from workflows.models import Case, CaseStatus

logger = logging.getLogger(__name__)

ROUTED = frozenset({CaseStatus.DECIDED, CaseStatus.IN_REVIEW, CaseStatus.FAILED})
CHANNEL_PREFIX = "loopgate:case-routed:"

_client: Any = None


def _redis() -> Any | None:
    """A Redis client on the broker's Redis, or None when the broker is not Redis."""
    global _client
    url = str(settings.CELERY_BROKER_URL or "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    if _client is None:
        import redis

        _client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    return _client


def cases_routed_publish(
    *, cases: Sequence[Case], from_statuses: Sequence[str], to_status: str
) -> None:
    """The ``workflows.hooks.on_case_moved`` hook: tell waiting requests, on commit."""
    if to_status not in ROUTED:
        return
    ids = [str(case.pk) for case in cases]

    def publish() -> None:
        client = _redis()
        if client is None:
            return
        try:
            with client.pipeline(transaction=False) as pipe:
                for case_id in ids:
                    pipe.publish(CHANNEL_PREFIX + case_id, to_status)
                pipe.execute()
        except Exception:  # a waiting request still wakes at its deadline
            logger.warning("routing of %s cases not published", len(ids), exc_info=True)

    transaction.on_commit(publish)


def _status(case_id: uuid.UUID) -> str | None:
    return Case.objects.filter(pk=case_id).values_list("status", flat=True).first()


def case_wait_routed(*, case_id: uuid.UUID, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the case to be routed; whether it was."""
    deadline = time.monotonic() + timeout
    client = _redis()
    if client is not None:
        try:
            return _wait_subscribed(client, case_id, deadline)
        except Exception:  # Redis unreachable: poll instead
            logger.warning("waiting on Redis failed; polling", exc_info=True)
    delay = 0.05
    while True:
        if _status(case_id) in ROUTED:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 1.0)


def _wait_subscribed(client: Any, case_id: uuid.UUID, deadline: float) -> bool:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(CHANNEL_PREFIX + str(case_id))
        # Subscribed first, then read: a routing that committed in between is seen here.
        if _status(case_id) in ROUTED:
            return True
        while (remaining := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=min(remaining, 5.0))
            if message is not None and message.get("type") == "message":
                return True
        return _status(case_id) in ROUTED
    finally:
        pubsub.close()
