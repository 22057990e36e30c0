"""The threshold recommendation: the calibrated global threshold, its curve, per-class hints.

Pure: the labelled predictions come in as numbers, the report goes out as frozen data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from decisions.stats import (
    CurvePoint,
    ThresholdRecommendation,
    calibrate_threshold,
    first_tested_size,
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
    labels_needed: int = 0
    pooled: bool = False


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
    per_class = calibrate_by_class(
        scored, labels=labels, target_error=target_error, confidence=confidence
    ).hints
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


@dataclass(frozen=True)
class ClassCalibration:
    """Class-conditional calibration with a pooled fallback for rare classes.

    Every label the model predicted at least ``own_size`` times among the labelled cases
    gets its own threshold; the rarer labels share one threshold calibrated on their
    pooled cases (``rare``). Each of the ``groups`` calibrations runs at confidence
    ``1 - (1 - confidence) / groups`` (Bonferroni), so with probability >= ``confidence``
    *every* group's error among its auto-decided cases is below ``target_error`` at once,
    and therefore so is the error of all automatic decisions together (a mixture).
    ``thresholds``: per label, its group's threshold (None: no threshold passes, the
    label is left to humans). ``hints`` says per label how many more labels would give it
    a threshold of its own. Which labels are rare depends on the counts of predictions
    only, never on whether they were right, so the choice does not spend the guarantee.
    """

    target_error: float
    confidence: float
    own_size: int
    groups: int
    rare: tuple[str, ...]
    thresholds: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))
    hints: tuple[ClassHint, ...] = ()


def calibrate_by_class(
    scored: Sequence[ScoredLabel],
    *,
    labels: Sequence[str],
    target_error: float,
    confidence: float,
) -> ClassCalibration:
    """Per-class thresholds for ``target_error`` (see ``ClassCalibration``)."""
    delta = 1.0 - confidence
    # A label is common when it could be tested at the strictest Bonferroni level (one
    # group per label): fixed from the counts before any group is calibrated.
    own_size = first_tested_size(target_error, 1.0 - delta / max(len(labels), 1))
    by_label = {label: [s for s in scored if s.predicted == label] for label in labels}
    common = [label for label in labels if len(by_label[label]) >= own_size]
    rare = tuple(label for label in labels if label not in common)
    pooled_rare = [s for label in rare for s in by_label[label]]
    groups = len(common) + (1 if pooled_rare else 0)
    level = 1.0 - delta / max(groups, 1)

    def calibrate(said: Sequence[ScoredLabel]) -> ThresholdRecommendation:
        return calibrate_threshold(
            [s.confidence for s in said],
            [s.correct for s in said],
            target_error=target_error,
            confidence=level,
        )

    rare_result = calibrate(pooled_rare)
    thresholds: dict[str, float | None] = {}
    hints = []
    for label in labels:
        said = by_label[label]
        if label in common:
            result = calibrate(said)
            threshold, reason = result.threshold, result.reason
            share = result.expected_automation_rate * len(said) / len(scored) if scored else 0.0
        else:
            threshold = rare_result.threshold
            share = (
                sum(1 for s in said if threshold is not None and s.confidence >= threshold)
                / len(scored)
                if scored
                else 0.0
            )
            reason = (
                f"{len(said)} labelled predictions of {label!r}, {own_size} needed for a "
                f"threshold of its own ({own_size - len(said)} more); until then it shares "
                f"the threshold of the rare labels pooled ({len(pooled_rare)} cases): "
                f"{rare_result.reason}"
            )
        thresholds[label] = threshold
        hints.append(
            ClassHint(
                label=label,
                n=len(said),
                threshold=threshold,
                expected_share=share,
                reason=reason,
                labels_needed=max(own_size - len(said), 0),
                pooled=label not in common,
            )
        )
    return ClassCalibration(
        target_error=target_error,
        confidence=confidence,
        own_size=own_size,
        groups=groups,
        rare=rare,
        thresholds=MappingProxyType(thresholds),
        hints=tuple(hints),
    )
