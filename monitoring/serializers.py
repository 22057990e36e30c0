from __future__ import annotations

from rest_framework import serializers

from kernel.serializers import Serializer


class PercentilesOutput(Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()


class MonitoringOutput(Serializer):
    """The monitoring series; every list is aligned with ``buckets`` (bucket starts)."""

    workflow = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    bucket = serializers.CharField()
    model_version = serializers.IntegerField(allow_null=True)
    buckets = serializers.ListField(child=serializers.DateTimeField())
    volume = serializers.ListField(child=serializers.IntegerField(), help_text="cases received")
    automation_rate = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="share of decided cases decided by the model",
    )
    decided = serializers.ListField(child=serializers.IntegerField())
    decided_by_model = serializers.ListField(child=serializers.IntegerField())
    human_decisions = serializers.ListField(
        child=serializers.IntegerField(), help_text="reviewer throughput: cases people decided"
    )
    human_override_rate = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="share of human decisions that differ from the model's label",
    )
    stage_errors = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="errors per stage: decode (image unreadable), scoring (model failed)",
    )
    latency = serializers.DictField(
        child=serializers.ListField(child=PercentilesOutput()),
        help_text="seconds per stage: queue_wait, model, routing, human, total",
    )
    model_latency_ms = serializers.ListField(child=PercentilesOutput())
    inputs = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text="per input metric (brightness, contrast, sharpness, saturation, clipped, "
        "width, height, file_size): mean, p10, p90, n per bucket",
    )
    reference = serializers.DictField(help_text="the reference window and its metric means")
    confidence_histogram = serializers.DictField()
    class_mix = serializers.DictField()
    audited_accuracy = serializers.ListField(
        child=serializers.DictField(),
        help_text="per model version and bucket: audited accuracy with its exact 95% interval",
    )
    deadlines = serializers.DictField(
        help_text="per bucket of the deadline: `missed` (cases whose deadline passed before "
        "a decision), `fallbacks` by kind (`label`, `model`, `escalate`, `none`: what the "
        "workflow's fallback did to a case still waiting for a human), and their totals"
    )
    label_free_estimate = serializers.ListField(child=serializers.DictField())
    drift_checks = serializers.ListField(child=serializers.DictField())
    drift_status = serializers.DictField()
    queue = serializers.DictField(help_text="open review tasks now: depth, oldest age")
    alerts = serializers.ListField(child=serializers.DictField())


class MonitoringSettingsOutput(Serializer):
    reference_from = serializers.DateTimeField(allow_null=True)
    reference_until = serializers.DateTimeField(allow_null=True)
    reference_size = serializers.IntegerField()
    window = serializers.IntegerField()
    check_every = serializers.IntegerField()
    alpha = serializers.FloatField()
    min_effect = serializers.FloatField()
    persistence = serializers.IntegerField()
    estimate_alert_below = serializers.FloatField(allow_null=True)
    step_down_on_drift = serializers.BooleanField(
        help_text="a new input-drift alert steps the level down one notch"
    )
    retrain_on_drift = serializers.BooleanField(
        help_text="a new input-drift alert starts a retraining run, as the retraining rule does"
    )
    step_down_on_estimate = serializers.BooleanField(
        help_text="a new accuracy-estimate alert steps the level down one notch"
    )
    retrain_on_estimate = serializers.BooleanField(
        help_text="a new accuracy-estimate alert starts a retraining run"
    )


class MonitoringSettingsInput(Serializer):
    reference_from = serializers.DateTimeField(required=False, allow_null=True)
    reference_until = serializers.DateTimeField(required=False, allow_null=True)
    reference_size = serializers.IntegerField(required=False, min_value=100, max_value=20_000)
    window = serializers.IntegerField(required=False, min_value=100, max_value=5_000)
    check_every = serializers.IntegerField(required=False, min_value=10, max_value=5_000)
    alpha = serializers.FloatField(required=False, min_value=1e-6, max_value=0.1)
    min_effect = serializers.FloatField(required=False, min_value=0.0, max_value=10.0)
    persistence = serializers.IntegerField(required=False, min_value=1, max_value=20)
    estimate_alert_below = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, max_value=1.0
    )
    step_down_on_drift = serializers.BooleanField(required=False)
    retrain_on_drift = serializers.BooleanField(required=False)
    step_down_on_estimate = serializers.BooleanField(required=False)
    retrain_on_estimate = serializers.BooleanField(required=False)
