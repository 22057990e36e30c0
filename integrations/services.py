"""Webhooks: registration, the outbox, and delivery.

An event is written (``WebhookEvent`` and one ``WebhookDelivery`` per subscribed webhook)
in the transaction that caused it: a case moved (``case_events_emit``, registered on
``workflows.hooks``), a level changed, a model promoted, an alert fired or resolved
(``event_emit``, called by the app that did it). Nothing is sent then; when the
transaction commits, a task drains the webhook's due deliveries: one sender per webhook
at a time (a PostgreSQL advisory lock), in order per ordering key (a case, or the
workflow), each POST signed and checked against the SSRF guard just before it is sent.
A failure is retried with exponential backoff; after ``LOOPGATE_WEBHOOK_MAX_ATTEMPTS``
the delivery is ``dead`` until someone redelivers it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import urllib3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from accounts.types import User
from integrations import signing
from integrations.models import (
    DeliveryStatus,
    EventType,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
)
from integrations.ssrf import UrlRefused, url_check
from kernel.errors import Conflict, InvalidInput
from kernel.readcache import access_key, cached_read
from workflows.access import FULL
from workflows.models import Case, CaseStatus, Workflow
from workflows.serializers import CaseOutput

logger = logging.getLogger(__name__)

EVENT_TYPES = frozenset(EventType.values)
CASE_EVENTS = {
    CaseStatus.DECIDED: EventType.CASE_DECIDED,
    CaseStatus.IN_REVIEW: EventType.CASE_IN_REVIEW,
}
WORKFLOW_KEY = "workflow"
USER_AGENT = "Loopgate-Webhooks/1"

# A delivery's status: pending until a 2xx; dead after the last failed attempt;
# either may be sent again by hand (redeliver). Changed only by _delivery_move.
DELIVERY_TRANSITIONS: dict[str, frozenset[str]] = {
    DeliveryStatus.PENDING: frozenset({DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD}),
    DeliveryStatus.SUCCEEDED: frozenset({DeliveryStatus.PENDING}),
    DeliveryStatus.DEAD: frozenset({DeliveryStatus.PENDING}),
}


class InvalidDeliveryTransition(Conflict):
    code = "invalid_transition"


def _delivery_move(delivery: WebhookDelivery, to_status: str) -> None:
    if to_status not in DELIVERY_TRANSITIONS[delivery.status]:
        raise InvalidDeliveryTransition(
            f"delivery {delivery.pk} cannot go from {delivery.status} to {to_status}"
        )
    delivery.status = to_status


def allowed_hosts() -> list[str]:
    return list(settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS)


# --- Registration ------------------------------------------------------------------------


def _secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _url_valid(url: Any) -> str:
    if not isinstance(url, str):
        raise InvalidInput("url: must be a string", field="url")
    if len(url) > 2000:
        raise InvalidInput("url: at most 2000 characters", field="url")
    try:
        url_check(url, allowed_hosts=allowed_hosts())
    except UrlRefused as exc:
        raise InvalidInput(exc.message, field="url") from None
    return url


def _events_valid(events: Any) -> list[str]:
    if not isinstance(events, list) or not events:
        raise InvalidInput(
            f"events: a non-empty list of event types, from {sorted(EVENT_TYPES)}", field="events"
        )
    unknown = [event for event in events if not isinstance(event, str) or event not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"events: unknown event types {unknown!r}; known: {sorted(EVENT_TYPES)}",
            field="events",
        )
    return sorted(set(events))


@dataclass(frozen=True)
class WebhookWithSecret:
    webhook: Webhook
    secret: str


def webhook_create(
    *, workflow: Workflow, url: Any, events: Any, description: str = "", actor: User | None
) -> WebhookWithSecret:
    """Register an endpoint for ``events`` of ``workflow``; the secret is returned once."""
    url = _url_valid(url)
    events = _events_valid(events)
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        limit = settings.LOOPGATE_WEBHOOKS_PER_WORKFLOW
        if Webhook.objects.filter(workflow=locked).count() >= limit:
            raise Conflict(
                f"workflow {workflow.slug!r} already has {limit} webhooks, the most allowed",
                code="too_many_webhooks",
            )
        secret = _secret()
        webhook = Webhook.objects.create(
            workflow=locked,
            url=url,
            events=events,
            description=description,
            secret=secret,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
    _memo_forget(workflow.pk)
    return WebhookWithSecret(webhook=webhook, secret=secret)


def webhook_update(
    *,
    webhook: Webhook,
    url: Any = None,
    events: Any = None,
    description: str | None = None,
    active: bool | None = None,
) -> Webhook:
    fields = []
    if url is not None:
        webhook.url = _url_valid(url)
        fields.append("url")
    if events is not None:
        webhook.events = _events_valid(events)
        fields.append("events")
    if description is not None:
        webhook.description = description
        fields.append("description")
    if active is not None:
        webhook.active = active
        fields.append("active")
    if fields:
        webhook.save(update_fields=[*fields, "updated_at"])
    _memo_forget(webhook.workflow_id)
    if active:
        webhook_drain_queue(webhook_id=webhook.pk)
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    """Delete the endpoint with its deliveries and their log."""
    workflow_id = webhook.workflow_id
    webhook.delete()
    _memo_forget(workflow_id)


def webhook_secret_rotate(*, webhook: Webhook) -> str:
    """A new secret, effective for every delivery from now on (retries included)."""
    secret = _secret()
    Webhook.objects.filter(pk=webhook.pk).update(
        secret=secret, secret_rotated_at=timezone.now(), updated_at=timezone.now()
    )
    webhook.secret = secret
    return secret


# --- The outbox ----------------------------------------------------------------------------


def subscriptions_cache_key(workflow_id: int) -> str:
    return access_key("webhooks", workflow_id)


def subscriptions_cached(workflow_id: int) -> list[tuple[int, list[str]]]:
    """The workflow's active webhooks and the events each wants, from the shared cache
    (``kernel.readcache``, D128): every write of a webhook forgets them
    (``integrations.invalidation``), so a verdict or a batch does not read them."""

    def load() -> list[tuple[int, list[str]]]:
        return [
            (pk, list(events or []))
            for pk, events in Webhook.objects.filter(
                workflow_id=workflow_id, active=True
            ).values_list("pk", "events")
        ]

    return cached_read(subscriptions_cache_key(workflow_id), load) or []


# Which webhooks of a workflow want which events, read once per transaction: a batch that
# routes sixteen cases reads the subscriptions once. An entry is valid while the
# transaction that read it is open: its marker is an on-commit callback of that
# transaction, which Django drops on commit and on rollback.
_local = threading.local()


def _memo() -> dict[int, tuple[Any, list[tuple[int, list[str]]]]]:
    memo = getattr(_local, "memo", None)
    if memo is None:
        memo = _local.memo = {}
    return memo


def _memo_forget(workflow_id: int) -> None:
    _memo().pop(workflow_id, None)


def _subscriptions(workflow_id: int) -> list[tuple[int, list[str]]]:
    pending = getattr(connection, "run_on_commit", [])
    memo = _memo()
    cached = memo.get(workflow_id)
    if cached is not None and any(entry[1] is cached[0] for entry in pending):
        return cached[1]
    rows = subscriptions_cached(workflow_id)
    if connection.in_atomic_block:

        def marker() -> None:
            memo.pop(workflow_id, None)

        transaction.on_commit(marker)
        memo[workflow_id] = (marker, rows)
    return rows


def _json(value: Any) -> Any:
    return json.loads(JSONRenderer().render(value))


def event_emit(
    *, workflow: Workflow, type: str, payload: dict[str, Any], ordering_key: str = WORKFLOW_KEY
) -> WebhookEvent | None:
    """Write ``type`` for the workflow's webhooks subscribed to it (in the caller's
    transaction); their deliveries are queued when it commits. None when none wants it."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    webhook_ids = [pk for pk, events in _subscriptions(workflow.pk) if type in events]
    if not webhook_ids:
        return None
    with transaction.atomic():
        event = WebhookEvent.objects.create(
            workflow=workflow,
            type=type,
            ordering_key=ordering_key,
            payload=_json(payload),
        )
        now = timezone.now()
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    webhook_id=pk, event=event, ordering_key=ordering_key, next_attempt_at=now
                )
                for pk in webhook_ids
            ]
        )
        for pk in webhook_ids:
            webhook_drain_queue(webhook_id=pk)
    return event


def case_events_emit(
    *, cases: Sequence[Case], from_statuses: Sequence[str], to_status: str
) -> None:
    """The ``workflows.hooks.on_case_moved`` hook: ``case.decided`` / ``case.in_review``."""
    type = CASE_EVENTS.get(to_status)  # type: ignore[call-overload]  # TextChoices key
    if type is None:
        return
    for case, from_status in zip(cases, from_statuses, strict=True):
        if not any(type in events for _, events in _subscriptions(case.workflow_id)):
            continue
        body = CaseOutput(case, context={"visibility": FULL}).data
        event_emit(
            workflow=case.workflow,
            type=type,
            payload={"case": body, "from_status": from_status},
            ordering_key=str(case.pk),
        )


def alert_event_emit(*, workflow: Workflow, alert: Any, fired: bool) -> WebhookEvent | None:
    """``alert.fired`` / ``alert.resolved`` for an alert row (call in its transaction)."""
    payload = {
        "alert": {
            "id": alert.pk,
            "kind": getattr(alert, "kind", ""),
            "state": getattr(alert, "state", ""),
            "message": getattr(alert, "message", ""),
            "data": getattr(alert, "data", {}),
            "created_at": getattr(alert, "created_at", None),
            "resolved_at": getattr(alert, "resolved_at", None),
            "resolution": getattr(alert, "resolution", ""),
        }
    }
    return event_emit(
        workflow=workflow,
        type=EventType.ALERT_FIRED if fired else EventType.ALERT_RESOLVED,
        payload=payload,
    )


# --- Delivery ------------------------------------------------------------------------------


def webhook_drain_queue(*, webhook_id: int) -> None:
    """Queue the drain of ``webhook_id`` when the current transaction commits."""

    def publish() -> None:
        from integrations.tasks import webhook_drain

        try:
            webhook_drain.delay(webhook_id)
        except Exception:  # the periodic dispatch sends it later
            logger.warning("webhook %s drain not queued", webhook_id, exc_info=True)

    transaction.on_commit(publish)


def envelope(event: WebhookEvent, workflow_slug: str) -> bytes:
    body = {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "workflow": workflow_slug,
        "data": event.payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def backoff_seconds(attempts: int) -> float:
    """The wait after the ``attempts``-th failure: base x 2^(n-1), capped."""
    base = settings.LOOPGATE_WEBHOOK_BACKOFF_BASE_SECONDS
    return float(
        min(base * 2 ** max(attempts - 1, 0), settings.LOOPGATE_WEBHOOK_BACKOFF_MAX_SECONDS)
    )


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_signed(*, url: str, secret: str, body: bytes, headers: dict[str, str]) -> PostResult:
    """POST ``body`` to ``url``: SSRF-checked, to the checked address, no redirects."""
    started = time.monotonic()

    def done(status_code: int | None, error: str) -> PostResult:
        return PostResult(status_code, error, (time.monotonic() - started) * 1000)

    try:
        target = url_check(url, allowed_hosts=allowed_hosts())
    except UrlRefused as exc:
        return done(None, f"refused: {exc.message}")
    timeout = urllib3.Timeout(
        connect=settings.LOOPGATE_WEBHOOK_CONNECT_TIMEOUT_SECONDS,
        read=settings.LOOPGATE_WEBHOOK_READ_TIMEOUT_SECONDS,
    )
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=timeout, retries=False, maxsize=1
        )
    all_headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.HEADER: signing.signature_header(secret=secret, body=body),
        **headers,
    }
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=all_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            status = response.status
            response.read(64 * 1024, decode_content=False)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:500])
    except OSError as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        pool.close()
    if 300 <= status < 400:
        return done(status, "redirect not followed")
    if not 200 <= status < 300:
        return done(status, f"HTTP {status}")
    return done(status, "")


def _due_deliveries(webhook_id: int) -> Any:
    earlier_pending = WebhookDelivery.objects.filter(
        webhook_id=OuterRef("webhook_id"),
        ordering_key=OuterRef("ordering_key"),
        status=DeliveryStatus.PENDING,
        id__lt=OuterRef("id"),
    )
    return (
        WebhookDelivery.objects.filter(
            webhook_id=webhook_id,
            webhook__active=True,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=timezone.now(),
        )
        .exclude(Exists(earlier_pending))
        .order_by("next_attempt_at", "id")
    )


@contextmanager
def _webhook_lock(webhook_id: int) -> Iterator[bool]:
    """One sender per webhook (a session-level advisory lock; freed if the process dies)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [7_301, webhook_id])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [7_301, webhook_id])


def delivery_attempt(*, delivery: WebhookDelivery) -> PostResult:
    """Send one delivery now and record the attempt and its outcome."""
    webhook = delivery.webhook
    event = delivery.event
    body = envelope(event, webhook.workflow.slug)
    attempt_number = delivery.attempts + 1
    result = post_signed(
        url=webhook.url,
        secret=webhook.secret,
        body=body,
        headers={
            "Loopgate-Event-Id": str(event.id),
            "Loopgate-Event-Type": event.type,
            "Loopgate-Delivery": str(delivery.pk),
            "Loopgate-Attempt": str(attempt_number),
        },
    )
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        WebhookAttempt.objects.create(
            delivery=locked,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        locked.attempts = attempt_number
        locked.last_status_code = result.status_code
        locked.last_error = result.error
        if locked.status != DeliveryStatus.PENDING:
            pass  # moved meanwhile (deleted webhook, manual change): keep what it says
        elif result.ok:
            _delivery_move(locked, DeliveryStatus.SUCCEEDED)
            locked.delivered_at = timezone.now()
        elif attempt_number >= settings.LOOPGATE_WEBHOOK_MAX_ATTEMPTS:
            _delivery_move(locked, DeliveryStatus.DEAD)
            logger.warning(
                "webhook %s delivery %s dead after %s attempts: %s",
                webhook.pk,
                delivery.pk,
                attempt_number,
                result.error,
            )
        else:
            locked.next_attempt_at = timezone.now() + timedelta(
                seconds=backoff_seconds(attempt_number)
            )
        locked.save()
    delivery.refresh_from_db()
    return result


def webhook_drain(*, webhook_id: int, limit: int = 200) -> int:
    """Send the webhook's due deliveries, oldest first and in order per key; returns how
    many were attempted. Another sender holding the webhook makes this a no-op."""
    attempted = 0
    with _webhook_lock(webhook_id) as got:
        if not got:
            return 0
        while attempted < limit:
            delivery = (
                _due_deliveries(webhook_id).select_related("webhook__workflow", "event").first()
            )
            if delivery is None:
                break
            delivery_attempt(delivery=delivery)
            attempted += 1
    return attempted


def webhook_next_due(*, webhook_id: int) -> float | None:
    """Seconds until the webhook's next pending delivery is due (None: nothing pending)."""
    next_at = WebhookDelivery.objects.filter(
        webhook_id=webhook_id, webhook__active=True, status=DeliveryStatus.PENDING
    ).aggregate(at=Min("next_attempt_at"))["at"]
    if next_at is None:
        return None
    return max((next_at - timezone.now()).total_seconds(), 0.0)


def webhooks_due() -> list[int]:
    """Webhooks with a pending delivery due now (the periodic dispatch's safety net)."""
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            webhook__active=True,
            next_attempt_at__lte=timezone.now(),
        )
        .values_list("webhook_id", flat=True)
        .distinct()
    )


def delivery_redeliver(*, delivery: WebhookDelivery, actor: User) -> WebhookDelivery:
    """Send a delivery again (dead or already delivered): it becomes pending, due now,
    with a fresh count of attempts, the same event id and body."""
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if locked.status == DeliveryStatus.PENDING:
            raise Conflict(
                f"delivery {locked.pk} is already pending (attempt {locked.attempts + 1} "
                f"is due at {locked.next_attempt_at.isoformat()})",
                code="already_pending",
            )
        _delivery_move(locked, DeliveryStatus.PENDING)
        locked.attempts = 0
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["status", "attempts", "next_attempt_at"])
        webhook_drain_queue(webhook_id=locked.webhook_id)
    logger.info("delivery %s redelivered by %s", locked.pk, actor.get_username())
    return locked
