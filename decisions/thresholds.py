"""The threshold recommendation: the calibrated global threshold, its curve, per-class hints.

Pure: the labelled predictions come in as numbers, the report goes out as frozen data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from decisions.stats import (
    CurvePoint,
    ThresholdRecommendation,
    calibrate_threshold,
    risk_coverage_curve,
)

CURVE_GRID: tuple[float, ...] = tuple(k / 100 for k in range(101))


@dataclass(frozen=True)
class ScoredLabel:
    """One model prediction and whether the human label agreed."""

    predicted: str
    confidence: float
    correct: bool


@dataclass(frozen=True)
class ClassHint:
    """A suggestion for one label's own threshold, calibrated on the cases given that label.

    ``expected_share`` is the share of all labelled cases it would auto-decide.
    """

    label: str
    n: int
    threshold: float | None
    expected_share: float
    reason: str


@dataclass(frozen=True)
class ThresholdReport:
    """``recommendation`` is ``calibrate_threshold`` over every labelled case (its
    guarantee: with probability >= ``confidence`` the true error among auto-decided cases
    is below ``target_error``). ``curve`` is the risk-coverage curve on a 0.01 grid plus
    the threshold in force (``current_threshold``), whose per-point bounds are *not*
    simultaneous (for the picture only); ``current`` its point at the threshold in force.
    """

    current_threshold: float
    target_error: float
    confidence: float
    n_labelled: int
    recommendation: ThresholdRecommendation
    curve: tuple[CurvePoint, ...]
    current: CurvePoint | None
    per_class: tuple[ClassHint, ...]


def threshold_report(
    scored: Sequence[ScoredLabel],
    *,
    labels: Sequence[str],
    current_threshold: float,
    target_error: float,
    confidence: float,
) -> ThresholdReport:
    """The calibrated threshold for ``target_error``, the curve behind it, per-class hints."""
    confidences = [s.confidence for s in scored]
    correct = [s.correct for s in scored]
    recommendation = calibrate_threshold(
        confidences, correct, target_error=target_error, confidence=confidence
    )
    grid = sorted(set(CURVE_GRID) | {round(current_threshold, 6)}, reverse=True)
    curve = tuple(risk_coverage_curve(confidences, correct, confidence=confidence, thresholds=grid))
    current = next((p for p in curve if abs(p.threshold - current_threshold) < 1e-9), None)
    per_class = []
    for label in labels:
        said = [s for s in scored if s.predicted == label]
        hint = calibrate_threshold(
            [s.confidence for s in said],
            [s.correct for s in said],
            target_error=target_error,
            confidence=confidence,
        )
        per_class.append(
            ClassHint(
                label=label,
                n=len(said),
                threshold=hint.threshold,
                expected_share=(
                    hint.expected_automation_rate * len(said) / len(scored) if scored else 0.0
                ),
                reason=hint.reason,
            )
        )
    return ThresholdReport(
        current_threshold=current_threshold,
        target_error=target_error,
        confidence=confidence,
        n_labelled=len(scored),
        recommendation=recommendation,
        curve=curve,
        current=current,
        per_class=tuple(per_class),
    )
