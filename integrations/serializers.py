"""Input and output shapes of the webhook API."""

from __future__ import annotations

from rest_framework import serializers

from integrations.models import EventType, Webhook, WebhookAttempt, WebhookDelivery
from kernel.serializers import ModelSerializer, Serializer


class WebhookCreateInput(Serializer):
    url = serializers.CharField(max_length=2000, help_text="http(s) URL; public address.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values), min_length=1, max_length=20
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)


class WebhookUpdateInput(Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values),
        min_length=1,
        max_length=20,
        required=False,
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


class WebhookOutput(ModelSerializer):
    workflow = serializers.CharField(source="workflow.slug")

    class Meta:
        model = Webhook
        fields = [
            "id",
            "workflow",
            "url",
            "events",
            "description",
            "active",
            "secret_rotated_at",
            "created_at",
            "updated_at",
        ]


class WebhookWithSecretOutput(WebhookOutput):
    secret = serializers.CharField(help_text="Shown once: keep it to verify signatures.")

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret"]


class SecretOutput(Serializer):
    secret = serializers.CharField(help_text="Shown once: keep it to verify signatures.")


class AttemptOutput(ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["attempted_at", "status_code", "error", "duration_ms"]


class DeliveryOutput(ModelSerializer):
    event_id = serializers.UUIDField(source="event.id")
    event_type = serializers.CharField(source="event.type")
    event_created_at = serializers.DateTimeField(source="event.created_at")
    log = AttemptOutput(many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "event_created_at",
            "ordering_key",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "log",
        ]
