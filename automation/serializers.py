"""Input and output shapes of the automation API (also what the OpenAPI schema shows)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from automation.inputs import CONFIDENCE_MAX, CONFIDENCE_MIN, TARGET_ERROR_MAX, TARGET_ERROR_MIN
from automation.models import Alert, LevelChange
from decisions.routing import Level
from kernel.bounds import INT32_MAX
from kernel.serializers import ModelSerializer, Serializer

LEVEL_CHOICES = [level.value for level in Level]


class LevelChangeOutput(ModelSerializer):
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)

    class Meta:
        model = LevelChange
        fields = [
            "id",
            "created_at",
            "actor",
            "automatic",
            "overridden",
            "from_level",
            "to_level",
            "before",
            "after",
            "reason",
            "evidence",
        ]


class AlertOutput(ModelSerializer):
    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "state",
            "message",
            "data",
            "created_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledgement",
            "resolved_at",
            "resolved_by",
            "resolution",
        ]

    acknowledged_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    resolved_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )


class AlertNoteInput(Serializer):
    note = serializers.CharField(
        max_length=2000, help_text="Why: kept with the alert (who and when are recorded)."
    )


class AutomationUpdateInput(Serializer):
    level = serializers.ChoiceField(choices=LEVEL_CHOICES, required=False)
    confidence_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    class_thresholds = serializers.DictField(
        child=serializers.FloatField(min_value=0.0, max_value=1.0, allow_null=True),
        required=False,
        help_text='Per-class rules, replacing the current ones: {"ok": 0.9, "crack": null} '
        "(null: never decided by the model; a label left out follows the global threshold).",
    )
    audit_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    target_accuracy = serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        help_text="The guarantee of `full`: overall accuracy's lower bound must reach it.",
    )
    target_error = serializers.FloatField(
        min_value=0.0001,
        max_value=0.5,
        required=False,
        help_text="The guarantee of `partial`: error among automatic decisions stays below it "
        "(calibrated threshold, at the workflow's evidence confidence).",
    )
    min_evidence = serializers.IntegerField(min_value=0, max_value=INT32_MAX, required=False)
    reason = serializers.CharField(help_text="Why; recorded in the audit log.")
    override = serializers.BooleanField(
        default=False,
        help_text="Superusers only: pass what the evidence gate refuses (logged as overridden).",
    )


class ThresholdQueryInput(Serializer):
    target_error = serializers.FloatField(
        required=False,
        min_value=TARGET_ERROR_MIN,
        max_value=TARGET_ERROR_MAX,
        help_text="Error rate among auto-decided cases to stay below "
        "(default: the workflow's target error).",
    )
    confidence = serializers.FloatField(
        required=False,
        min_value=CONFIDENCE_MIN,
        max_value=CONFIDENCE_MAX,
        help_text="Probability that the guarantee holds "
        "(default: the workflow's evidence confidence).",
    )
    review_cost = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=1e9,
        help_text="Cost of one human review (money or minutes); with error_cost, the "
        "report adds the cheapest threshold under the same guarantee.",
    )
    error_cost = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=1e9,
        help_text="Cost of one wrong automatic decision, same unit as review_cost.",
    )
    class_error_costs = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Per predicted label, overriding error_cost: `ok:500,crack:20`.",
    )


class ThresholdApplyInput(ThresholdQueryInput):
    reason = serializers.CharField(help_text="Why; recorded in the audit log.")
    objective = serializers.ChoiceField(
        choices=["automation", "cost"],
        default="automation",
        help_text="`automation`: the lowest calibrated threshold (most automation); `cost`: "
        "the cheapest threshold under the same guarantee (needs review_cost and error_cost).",
    )


class IntervalOutput(Serializer):
    estimate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField()
    high = serializers.FloatField()
    successes = serializers.IntegerField()
    n = serializers.IntegerField()
    confidence = serializers.FloatField()


class GateOutput(Serializer):
    level = serializers.ChoiceField(choices=LEVEL_CHOICES)
    sufficient = serializers.BooleanField()
    reason = serializers.CharField(help_text="What is missing, or why it suffices.")
    model_version = serializers.CharField(allow_null=True)
    n = serializers.IntegerField()
    successes = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    interval = IntervalOutput()
    lower_bound = serializers.FloatField()
    target_accuracy = serializers.FloatField()
    min_evidence = serializers.IntegerField()
    confidence = serializers.FloatField()
    labels_needed = serializers.IntegerField(allow_null=True)
    guarantee = serializers.ChoiceField(
        choices=["error_among_automatic", "overall_accuracy"],
        help_text="What the level is gated on: `partial` on the error among automatic "
        "decisions (calibrated threshold), `full` on overall accuracy.",
    )
    target_error = serializers.FloatField(allow_null=True)
    calibrated_threshold = serializers.FloatField(
        allow_null=True, help_text="The lowest threshold that keeps the guarantee (pooled)."
    )
    calibration_method = serializers.CharField(allow_null=True)
    class_thresholds = serializers.DictField(
        child=serializers.FloatField(allow_null=True), allow_null=True
    )
    calibration_n = serializers.IntegerField(allow_null=True)
    expected_automation_rate = serializers.FloatField(
        allow_null=True, help_text="Share of labelled cases the policy would auto-decide."
    )
    auto_error_rate = serializers.FloatField(allow_null=True)
    auto_error_upper_bound = serializers.FloatField(allow_null=True)
    sources = serializers.DictField(child=serializers.IntegerField())
    since = serializers.DateTimeField(
        allow_null=True, help_text="Only labels after this automatic step down count."
    )


class PolicyOutput(Serializer):
    level = serializers.ChoiceField(choices=LEVEL_CHOICES)
    confidence_threshold = serializers.FloatField()
    class_thresholds = serializers.DictField(child=serializers.FloatField(allow_null=True))
    audit_rate = serializers.FloatField()
    target_accuracy = serializers.FloatField()
    target_error = serializers.FloatField()
    min_evidence = serializers.IntegerField()
    evidence_confidence = serializers.FloatField()


class AuditWindowOutput(Serializer):
    level = serializers.CharField()
    model_version = serializers.CharField(allow_null=True)
    successes = serializers.IntegerField()
    n = serializers.IntegerField()
    size = serializers.IntegerField()
    since = serializers.DateTimeField(allow_null=True)
    accuracy = IntervalOutput()


class StepDownOutput(Serializer):
    active = serializers.BooleanField(help_text="Whether the level is one that can step down.")
    window = AuditWindowOutput()
    would_step_down = serializers.BooleanField()
    quantity = serializers.ChoiceField(
        choices=["error", "accuracy"],
        help_text="`error` of automatic decisions at partial, `accuracy` at full.",
    )
    target_error = serializers.FloatField()
    upper_bound = serializers.FloatField()
    target_accuracy = serializers.FloatField()
    confidence = serializers.FloatField()
    min_samples = serializers.IntegerField()
    reason = serializers.CharField()


class AutomationRateOutput(Serializer):
    routed = serializers.IntegerField()
    by_model = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)


class AutomationOutput(Serializer):
    workflow = serializers.CharField()
    automation = PolicyOutput()
    serving_model_version = serializers.CharField(allow_null=True)
    evidence = serializers.DictField(
        child=GateOutput(), help_text="The evidence gate for `partial` and for `full`."
    )
    step_down = StepDownOutput()
    automation_rate = AutomationRateOutput()
    alerts = AlertOutput(many=True, help_text="Firing alerts.")
    changes = LevelChangeOutput(many=True, help_text="The newest entries of the audit log.")


class AutomationUpdateOutput(AutomationOutput):
    change = LevelChangeOutput()


class ClassIntervalOutput(Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    precision = IntervalOutput(help_text="Right when the model says this label.")
    recall = IntervalOutput(help_text="Found when this label is true.")


class UnbiasedEvidenceOutput(Serializer):
    overall = IntervalOutput()
    kappa = serializers.FloatField(allow_null=True)
    per_class = ClassIntervalOutput(many=True)
    sources = serializers.DictField(child=serializers.IntegerField())


class AuditEvidenceOutput(Serializer):
    overall = IntervalOutput()
    per_level = serializers.DictField(child=IntervalOutput())


class BiasedEvidenceOutput(Serializer):
    overall = IntervalOutput()
    per_class = ClassIntervalOutput(many=True)
    note = serializers.CharField()


class VersionEvidenceOutput(Serializer):
    model_version = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    unbiased = UnbiasedEvidenceOutput()
    audit = AuditEvidenceOutput()
    biased = BiasedEvidenceOutput()


class CurvePointOutput(Serializer):
    threshold = serializers.FloatField()
    automation_rate = serializers.FloatField()
    n_auto = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    error_rate = serializers.FloatField()
    error_upper_bound = serializers.FloatField()


class RecommendationOutput(Serializer):
    threshold = serializers.FloatField(allow_null=True)
    expected_automation_rate = serializers.FloatField()
    error_rate = serializers.FloatField()
    error_upper_bound = serializers.FloatField()
    reason = serializers.CharField()


class CurrentThresholdOutput(Serializer):
    threshold = serializers.FloatField()
    point = CurvePointOutput(allow_null=True)


class ClassHintOutput(Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    n = serializers.IntegerField()
    threshold = serializers.FloatField(allow_null=True)
    expected_share = serializers.FloatField()
    reason = serializers.CharField()
    labels_needed = serializers.IntegerField(
        help_text="More labelled predictions of this class for a threshold of its own."
    )
    pooled = serializers.BooleanField(help_text="Shares the pooled threshold of rare classes.")


class CostOutput(Serializer):
    threshold = serializers.FloatField(
        allow_null=True, help_text="The cheapest threshold under the guarantee; null: none."
    )
    calibrated_threshold = serializers.FloatField(allow_null=True)
    automation_rate = serializers.FloatField()
    error_rate = serializers.FloatField()
    cost_per_case = serializers.FloatField()
    human_only_cost_per_case = serializers.FloatField()
    savings_per_case = serializers.FloatField()
    savings_per_1000_cases = serializers.FloatField()
    savings_share = serializers.FloatField()
    review_cost = serializers.FloatField()
    error_cost = serializers.FloatField()
    class_error_costs = serializers.DictField(child=serializers.FloatField())
    audit_rate = serializers.FloatField()
    reason = serializers.CharField()


class ThresholdOutput(Serializer):
    model_version = serializers.CharField(allow_null=True)
    target_error = serializers.FloatField()
    confidence = serializers.FloatField()
    n_labelled = serializers.IntegerField()
    since = serializers.DateTimeField(allow_null=True)
    recommendation = RecommendationOutput()
    current = CurrentThresholdOutput()
    curve = CurvePointOutput(many=True)
    per_class = ClassHintOutput(many=True)
    cost = CostOutput(
        allow_null=True, help_text="With review_cost and error_cost: the cheapest threshold."
    )
