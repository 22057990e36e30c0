"""Input rules shared by the automation API and its pages, so both read a request alike."""

from __future__ import annotations

from typing import Any

from workflows.models import Workflow

# The bounds of a threshold query, for the API's serializer and the page's form alike.
TARGET_ERROR_MIN, TARGET_ERROR_MAX = 0.0001, 0.5
CONFIDENCE_MIN, CONFIDENCE_MAX = 0.5, 0.9999


def threshold_defaults(workflow: Workflow, data: dict[str, Any]) -> tuple[float, float]:
    """The target error and confidence asked for, or the workflow's own."""
    target_error = data.get("target_error")
    if target_error is None:
        target_error = min(max(workflow.target_error, TARGET_ERROR_MIN), TARGET_ERROR_MAX)
    confidence = data.get("confidence")
    if confidence is None:
        confidence = workflow.evidence_confidence
    return float(target_error), float(confidence)
