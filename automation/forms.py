"""Forms of the automation page. They only validate input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from automation.inputs import CONFIDENCE_MAX, CONFIDENCE_MIN, TARGET_ERROR_MAX, TARGET_ERROR_MIN
from decisions.routing import Level
from kernel.bounds import INT32_MAX

CLASS_FOLLOW, CLASS_OWN, CLASS_NEVER = "global", "own", "never"
CLASS_MODES = [
    (CLASS_FOLLOW, "Global threshold"),
    (CLASS_OWN, "Own threshold"),
    (CLASS_NEVER, "Never auto-decide"),
]
POLICY_FORM_FIELDS = (
    "level",
    "confidence_threshold",
    "audit_rate",
    "target_error",
    "target_accuracy",
    "min_evidence",
)
LEVEL_LABELS = {
    Level.HUMAN_ONLY: "Human only",
    Level.SHADOW: "Shadow",
    Level.ASSISTANCE: "AI assistance",
    Level.PARTIAL: "Partial automation",
    Level.FULL: "Full automation",
}


def _unit(label: str, help_text: str = "") -> forms.FloatField:
    return forms.FloatField(
        label=label,
        min_value=0.0,
        max_value=1.0,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "max": "1"}),
    )


class PolicyForm(forms.Form):
    """The policy fields, one rule per class, a reason and (superusers) the override.

    ``changes()`` gives only what differs from the workflow's current policy.
    """

    level = forms.ChoiceField(label="Level", choices=[(lv.value, LEVEL_LABELS[lv]) for lv in Level])
    confidence_threshold = _unit(
        "Confidence threshold", "Partial automation: the model decides at or above it."
    )
    audit_rate = _unit("Audit rate", "Share of model-decided cases also sent, blind, to humans.")
    target_error = forms.FloatField(
        label="Target error among automatic decisions",
        min_value=TARGET_ERROR_MIN,
        max_value=TARGET_ERROR_MAX,
        help_text=(
            "Partial automation's guarantee: at most this share of the cases the model "
            "decides alone is wrong, at the evidence confidence (e.g. 0.02 = 2%)."
        ),
        widget=forms.NumberInput(
            attrs={"step": "0.001", "min": TARGET_ERROR_MIN, "max": TARGET_ERROR_MAX}
        ),
    )
    target_accuracy = _unit(
        "Target accuracy (full automation)",
        "Full automation's guarantee: the lower bound of overall accuracy must reach it.",
    )
    min_evidence = forms.IntegerField(
        label="Minimum evidence",
        min_value=0,
        max_value=INT32_MAX,
        help_text="Human-labelled cases needed before raising to partial or full.",
    )
    reason = forms.CharField(
        label="Reason for the change",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required; recorded in the audit log.",
    )
    confirm_level = forms.BooleanField(
        label="I confirm the change of the automation level",
        required=False,
        help_text="Needed when the level changes: it changes who decides the cases.",
    )

    def __init__(self, *args: Any, workflow: Any, allow_override: bool, **kwargs: Any) -> None:
        rules = workflow.class_thresholds or {}
        initial = {
            "level": workflow.level,
            "confidence_threshold": workflow.confidence_threshold,
            "audit_rate": workflow.audit_rate,
            "target_error": workflow.target_error,
            "target_accuracy": workflow.target_accuracy,
            "min_evidence": workflow.min_evidence,
        }
        for label in workflow.labels:
            if label not in rules:
                initial[f"class_mode__{label}"] = CLASS_FOLLOW
            elif rules[label] is None:
                initial[f"class_mode__{label}"] = CLASS_NEVER
            else:
                initial[f"class_mode__{label}"] = CLASS_OWN
                initial[f"class_threshold__{label}"] = rules[label]
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.workflow = workflow
        self.labels = list(workflow.labels)
        for label in self.labels:
            self.fields[f"class_mode__{label}"] = forms.ChoiceField(
                label=f"Rule for {label}", choices=CLASS_MODES, widget=forms.RadioSelect
            )
            field = _unit(f"Threshold for {label}")
            field.required = False
            self.fields[f"class_threshold__{label}"] = field
        for name in (*POLICY_FORM_FIELDS, "confirm_level"):
            if self.fields[name].help_text:
                self.fields[name].widget.attrs["aria-describedby"] = f"id_{name}_help"
        if allow_override:
            self.fields["override"] = forms.BooleanField(
                label="Override the evidence gate (superuser; logged)",
                required=False,
            )

    def policy_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in POLICY_FORM_FIELDS]

    def class_rows(self) -> list[dict[str, Any]]:
        """Per label: its mode radios and its threshold field, for the template."""
        return [
            {
                "label": label,
                "mode": self[f"class_mode__{label}"],
                "threshold": self[f"class_threshold__{label}"],
            }
            for label in self.labels
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        level = cleaned.get("level")
        if level is not None and level != self.workflow.level and not cleaned.get("confirm_level"):
            self.add_error(
                "confirm_level",
                f"Confirm the change of level from {LEVEL_LABELS[Level(self.workflow.level)]} "
                f"to {LEVEL_LABELS[Level(level)]}: tick the box.",
            )
        for label in self.labels:
            mode = cleaned.get(f"class_mode__{label}")
            if mode == CLASS_OWN and cleaned.get(f"class_threshold__{label}") is None:
                self.add_error(
                    f"class_threshold__{label}",
                    f"Give a threshold for {label}, or choose another rule.",
                )
        return cleaned

    def class_thresholds(self) -> dict[str, float | None]:
        rules: dict[str, float | None] = {}
        for label in self.labels:
            mode = self.cleaned_data[f"class_mode__{label}"]
            if mode == CLASS_NEVER:
                rules[label] = None
            elif mode == CLASS_OWN:
                rules[label] = self.cleaned_data[f"class_threshold__{label}"]
        return rules

    def changes(self) -> dict[str, Any]:
        """The policy fields whose submitted value differs from the workflow's."""
        workflow = self.workflow
        wanted = {
            "level": self.cleaned_data["level"],
            "confidence_threshold": self.cleaned_data["confidence_threshold"],
            "audit_rate": self.cleaned_data["audit_rate"],
            "target_error": self.cleaned_data["target_error"],
            "target_accuracy": self.cleaned_data["target_accuracy"],
            "min_evidence": self.cleaned_data["min_evidence"],
            "class_thresholds": self.class_thresholds(),
        }
        current = {name: getattr(workflow, name) for name in wanted}
        current["class_thresholds"] = workflow.class_thresholds or {}
        return {name: value for name, value in wanted.items() if value != current[name]}


class ThresholdForm(forms.Form):
    """Target error and confidence for the recommendation (GET), plus a reason to apply it.

    The server takes any number within the bounds, and so does the browser (``step``
    "any"): a step that the minimum is not a multiple of would make most values, the
    page's own default among them, impossible to submit.
    """

    target_error = forms.FloatField(
        label="Target error among auto-decided cases",
        min_value=TARGET_ERROR_MIN,
        max_value=TARGET_ERROR_MAX,
        widget=forms.NumberInput(
            attrs={"step": "any", "min": TARGET_ERROR_MIN, "max": TARGET_ERROR_MAX}
        ),
    )
    confidence = forms.FloatField(
        label="Confidence",
        min_value=CONFIDENCE_MIN,
        max_value=CONFIDENCE_MAX,
        widget=forms.NumberInput(
            attrs={"step": "any", "min": CONFIDENCE_MIN, "max": CONFIDENCE_MAX}
        ),
    )


class ThresholdCostForm(ThresholdForm):
    """The threshold query of the page, with the optional costs of the cost-aware threshold."""

    review_cost = forms.FloatField(
        label="Cost of a human review",
        required=False,
        min_value=0.0,
        max_value=1e9,
        help_text="Money or minutes; with the error cost, shows the cheapest threshold.",
    )
    error_cost = forms.FloatField(
        label="Cost of a wrong automatic decision",
        required=False,
        min_value=0.0,
        max_value=1e9,
    )
    class_error_costs = forms.CharField(
        label="Per class (optional)",
        required=False,
        max_length=2000,
        help_text="Overrides per predicted label, e.g. ok:500,crack:20",
    )


class ThresholdApplyForm(ThresholdForm):
    reason = forms.CharField(
        label="Reason for applying it",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required; recorded in the audit log.",
    )
