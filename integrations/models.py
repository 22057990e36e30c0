"""Webhooks: subscriptions, the outbox of events, deliveries and their attempts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from workflows.models import Workflow


class EventType(models.TextChoices):
    CASE_DECIDED = "case.decided"
    CASE_IN_REVIEW = "case.in_review"
    CASE_DEADLINE_MISSED = "case.deadline_missed"
    LEVEL_CHANGED = "level.changed"
    MODEL_PROMOTED = "model.promoted"
    ALERT_FIRED = "alert.fired"
    ALERT_RESOLVED = "alert.resolved"


class Webhook(models.Model):
    """An upstream endpoint that wants a workflow's events pushed to it, signed."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(help_text="The event types this endpoint receives.")
    description = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    # The HMAC key: shown once when created or rotated, kept to sign each delivery.
    secret = models.CharField(max_length=128)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["workflow", "active"])]

    def __str__(self) -> str:
        return f"{self.workflow} -> {self.url}"


class WebhookEvent(models.Model):
    """One event, written in the transaction that caused it (the outbox).

    Its id is the stable event id receivers de-duplicate on: every delivery and every
    retry of it carries the same id.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=32, choices=EventType.choices)
    # Deliveries with the same key go out in the order their events were written: the
    # case id for case events, "workflow" for the workflow's own events.
    ordering_key = models.CharField(max_length=64)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


class WebhookDelivery(models.Model):
    """One event for one webhook: pending until a 2xx, dead after too many failures."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    ordering_key = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event"], name="one_delivery_per_event"),
        ]
        indexes = [
            models.Index(
                fields=["webhook", "ordering_key", "id"],
                condition=models.Q(status="pending"),
                name="delivery_pending_by_key",
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_pending_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> webhook {self.webhook_id}: {self.status}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, what came back (or why nothing did), how long."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error[:40]}"
