"""Automation settings with their defaults (docs/decisions.md D9 justifies the numbers).

Each can be set in Django settings (``loopgate/settings.py`` or the test settings) under
the same name; the default below applies otherwise.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from decisions.gate import Floors

DEFAULTS: dict[str, Any] = {
    # The automatic step down looks at the newest audited, model-decided cases of the
    # serving version at the current level: at most this many of them ...
    "LOOPGATE_STEP_DOWN_WINDOW": 200,
    # ... and steps down when the exact upper bound of their accuracy at this confidence
    # is below the workflow's target accuracy ...
    "LOOPGATE_STEP_DOWN_CONFIDENCE": 0.99,
    # ... once at least this many audits are in the window.
    "LOOPGATE_STEP_DOWN_MIN_SAMPLES": 20,
    # Evidence and calibration read at most this many of the newest labelled predictions.
    "LOOPGATE_EVIDENCE_MAX_LABELS": 50_000,
    # Output drift: the serving version's newest confidences against those it had when
    # the level was last raised, two-sample Kolmogorov-Smirnov test at this p-value.
    "LOOPGATE_DRIFT_WINDOW": 300,
    "LOOPGATE_DRIFT_MIN_SAMPLES": 100,
    "LOOPGATE_DRIFT_P_VALUE": 0.001,
    # The floors of the evidence gate (decisions/gate.py, docs/decisions.md D10): at
    # ``partial`` and ``full`` a workflow audits at least this share of the model's
    # decisions, earns its level on at least this many human labels, and aims at least
    # this accuracy, unless a superuser overrides (logged).
    "LOOPGATE_GATE_MIN_AUDIT_RATE": 0.01,
    "LOOPGATE_GATE_MIN_EVIDENCE": 50,
    "LOOPGATE_GATE_MIN_TARGET_ACCURACY": 0.8,
    # ... and promises at most this error among automatic decisions at ``partial``.
    "LOOPGATE_GATE_MAX_TARGET_ERROR": 0.1,
}


def automation_setting(name: str) -> Any:
    """The setting ``name`` from Django settings, or its default here."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown automation setting {name!r}")
    return getattr(settings, name, DEFAULTS[name])


def gate_floors() -> Floors:
    """The evidence gate's floors from the settings."""
    return Floors(
        audit_rate=float(automation_setting("LOOPGATE_GATE_MIN_AUDIT_RATE")),
        min_evidence=int(automation_setting("LOOPGATE_GATE_MIN_EVIDENCE")),
        target_accuracy=float(automation_setting("LOOPGATE_GATE_MIN_TARGET_ACCURACY")),
        target_error=float(automation_setting("LOOPGATE_GATE_MAX_TARGET_ERROR")),
    )
