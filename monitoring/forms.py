"""The form of the monitoring page's alert actions. It only validates; the service decides."""

from __future__ import annotations

from django import forms

ACTION_LABELS = {
    "step_down_on_drift": "An input-drift alert steps the level down one notch",
    "retrain_on_drift": "An input-drift alert starts a retraining run",
    "step_down_on_estimate": "An accuracy-estimate alert steps the level down one notch",
    "retrain_on_estimate": "An accuracy-estimate alert starts a retraining run",
}


class AlertActionsForm(forms.Form):
    """Every action, checked or not: an unchecked box turns the action off."""

    step_down_on_drift = forms.BooleanField(
        required=False, label=ACTION_LABELS["step_down_on_drift"]
    )
    retrain_on_drift = forms.BooleanField(required=False, label=ACTION_LABELS["retrain_on_drift"])
    step_down_on_estimate = forms.BooleanField(
        required=False, label=ACTION_LABELS["step_down_on_estimate"]
    )
    retrain_on_estimate = forms.BooleanField(
        required=False, label=ACTION_LABELS["retrain_on_estimate"]
    )
