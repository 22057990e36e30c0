"""Input rules shared by the automation API and its pages, so both read a request alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.errors import InvalidInput
from workflows.models import Workflow

COST_MAX = 1e9


@dataclass(frozen=True)
class Costs:
    """What a human review and a wrong automatic decision cost (same unit: money or minutes);
    ``per_class`` overrides the error cost for a predicted label."""

    review: float
    error: float
    per_class: dict[str, float]


def costs_from(workflow: Workflow, data: dict[str, Any]) -> Costs | None:
    """The costs asked for (``review_cost`` and ``error_cost`` together, optional
    ``class_error_costs`` as ``label:cost,label:cost``), or None when none were given."""
    review, error = data.get("review_cost"), data.get("error_cost")
    per_class_text = (data.get("class_error_costs") or "").strip()
    if review is None and error is None and not per_class_text:
        return None
    if review is None or error is None:
        missing = "review_cost" if review is None else "error_cost"
        raise InvalidInput(
            f"{missing}: give both review_cost and error_cost for the cost-aware threshold",
            field=missing,
        )
    per_class: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in per_class_text.split(","))):
        label, _, value = item.rpartition(":")
        if label not in workflow.labels:
            raise InvalidInput(
                f"class_error_costs: unknown label {label!r} in {item!r} (labels: "
                f"{', '.join(workflow.labels)}; write label:cost,label:cost)",
                field="class_error_costs",
            )
        try:
            cost = float(value)
        except ValueError:
            cost = -1.0
        if not 0.0 <= cost <= COST_MAX:
            raise InvalidInput(
                f"class_error_costs: {item!r} needs a cost from 0 to {COST_MAX:g}",
                field="class_error_costs",
            )
        per_class[label] = cost
    return Costs(review=float(review), error=float(error), per_class=per_class)


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
