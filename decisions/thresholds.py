"""The threshold recommendation: the calibrated global threshold, its curve, per-class hints.

Pure: the labelled predictions come in as numbers, the report goes out as frozen data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from decisions.stats import (
    CurvePoint,
    ThresholdRecommendation,
    binomial_upper_bound,
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
    class_rules: Mapping[str, float | None] | None = None,
) -> ThresholdReport:
    """The calibrated threshold for ``target_error``, the curve behind it, per-class hints.

    With per-class rules in force (``class_rules`` holds a number for some label), the
    partial gate judges every label that follows the global threshold against
    its own class-conditional calibration (``decisions.gate.partial_judge``); the global
    threshold recommended is then the highest of those, so applying it passes that gate.
    """
    confidences = [s.confidence for s in scored]
    correct = [s.correct for s in scored]
    recommendation = calibrate_threshold(
        confidences, correct, target_error=target_error, confidence=confidence
    )
    by_class = calibrate_by_class(
        scored, labels=labels, target_error=target_error, confidence=confidence
    )
    if class_rules and any(value is not None for value in class_rules.values()):
        recommendation = _global_for_class_rules(
            scored, by_class, class_rules, recommendation, labels
        )
    grid = sorted(set(CURVE_GRID) | {round(current_threshold, 6)}, reverse=True)
    curve = tuple(risk_coverage_curve(confidences, correct, confidence=confidence, thresholds=grid))
    current = next((p for p in curve if abs(p.threshold - current_threshold) < 1e-9), None)
    per_class = by_class.hints
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


def _global_for_class_rules(
    scored: Sequence[ScoredLabel],
    by_class: ClassCalibration,
    class_rules: Mapping[str, float | None],
    pooled: ThresholdRecommendation,
    labels: Sequence[str],
) -> ThresholdRecommendation:
    """The global threshold every label without a rule of its own may use: the highest of
    their class-conditional calibrated thresholds (None when one of them has none)."""
    followers = [label for label in labels if label not in class_rules]
    if not followers:
        return pooled
    needed = [by_class.thresholds.get(label) for label in followers]
    missing = [label for label, value in zip(followers, needed, strict=True) if value is None]
    if missing:
        return replace(
            pooled,
            threshold=None,
            expected_automation_rate=0.0,
            error_rate=0.0,
            error_upper_bound=1.0,
            reason=f"no class-conditional threshold yet for {', '.join(map(repr, missing))} "
            "(they follow the global threshold; see the per-class hints)",
        )
    threshold = max(value for value in needed if value is not None)
    decided = [s for s in scored if s.predicted in followers and s.confidence >= threshold]
    wrong = sum(1 for s in decided if not s.correct)
    return replace(
        pooled,
        threshold=threshold,
        expected_automation_rate=len(decided) / len(scored) if scored else 0.0,
        error_rate=wrong / len(decided) if decided else 0.0,
        error_upper_bound=(
            binomial_upper_bound(wrong, len(decided), pooled.confidence) if decided else 1.0
        ),
        reason="the highest class-conditional threshold of the labels that follow the "
        "global threshold (per-class rules are in force)",
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


@dataclass(frozen=True)
class CostPoint:
    """Expected cost per case of auto-deciding at or above ``threshold``."""

    threshold: float
    automation_rate: float
    error_rate: float
    cost_per_case: float


@dataclass(frozen=True)
class CostChoice:
    """The threshold that minimises expected cost, among those the guarantee allows.

    ``threshold`` None: no threshold keeps the error target, so every case goes to a
    human (``cost_per_case`` = ``human_only_cost_per_case``). Costs are per case, in the
    admin's unit (money or minutes); ``savings_per_case`` is against reviewing every case.
    """

    threshold: float | None
    calibrated_threshold: float | None
    automation_rate: float
    error_rate: float
    cost_per_case: float
    human_only_cost_per_case: float
    savings_per_case: float
    savings_share: float
    review_cost: float
    error_cost: float
    class_error_costs: Mapping[str, float]
    audit_rate: float
    reason: str
    curve: tuple[CostPoint, ...] = ()


def cost_aware_threshold(
    scored: Sequence[ScoredLabel],
    *,
    target_error: float,
    confidence: float,
    review_cost: float,
    error_cost: float,
    class_error_costs: Mapping[str, float] | None = None,
    audit_rate: float = 0.0,
) -> CostChoice:
    """The cheapest threshold that keeps the error guarantee, and what it saves.

    Cost of one case at threshold t: a case below t is reviewed (``review_cost``); a case
    at or above t is decided by the model, costs ``error_cost`` (or its predicted label's
    entry in ``class_error_costs``: "a wrong automatic *ok* costs 500") when wrong, and
    ``review_cost`` more with probability ``audit_rate`` (the blind audit). The expected
    cost per case is estimated on the labelled cases. Only thresholds at or above the
    calibrated one (``calibrate_threshold`` for ``target_error`` at ``confidence``) are
    candidates: fixed-sequence testing rejected every one of them, so the guarantee holds
    for whichever the cost picks, and choosing by cost does not spend it. Without a
    calibrated threshold, everything goes to humans.
    """
    if review_cost < 0 or error_cost < 0 or not 0.0 <= audit_rate <= 1.0:
        raise ValueError("costs must be >= 0 and audit_rate within [0, 1]")
    class_costs = dict(class_error_costs or {})
    if any(value < 0 for value in class_costs.values()):
        raise ValueError("class error costs must be >= 0")
    n = len(scored)
    human_only = float(review_cost)
    recommendation = calibrate_threshold(
        [s.confidence for s in scored],
        [s.correct for s in scored],
        target_error=target_error,
        confidence=confidence,
    )
    calibrated = recommendation.threshold

    def base(reason: str) -> CostChoice:
        return CostChoice(
            threshold=None,
            calibrated_threshold=calibrated,
            automation_rate=0.0,
            error_rate=0.0,
            cost_per_case=human_only,
            human_only_cost_per_case=human_only,
            savings_per_case=0.0,
            savings_share=0.0,
            review_cost=float(review_cost),
            error_cost=float(error_cost),
            class_error_costs=MappingProxyType(class_costs),
            audit_rate=audit_rate,
            reason=reason,
        )

    if calibrated is None or n == 0:
        return base(f"every case goes to a human: {recommendation.reason}")
    ordered = sorted(scored, key=lambda s: s.confidence, reverse=True)
    curve: list[CostPoint] = []
    best: CostPoint | None = None
    auto_errors_cost, wrong = 0.0, 0
    for index, item in enumerate(ordered):
        if item.confidence < calibrated:
            break
        if not item.correct:
            wrong += 1
            auto_errors_cost += class_costs.get(item.predicted, error_cost)
        is_last_of_tie = index + 1 == n or ordered[index + 1].confidence < item.confidence
        if not is_last_of_tie:
            continue
        auto = index + 1
        cost = ((n - auto) * review_cost + auto_errors_cost + auto * audit_rate * review_cost) / n
        point = CostPoint(
            threshold=item.confidence,
            automation_rate=auto / n,
            error_rate=wrong / auto,
            cost_per_case=cost,
        )
        curve.append(point)
        if best is None or point.cost_per_case < best.cost_per_case:
            best = point
    if best is None or best.cost_per_case >= human_only:
        return replace(
            base(
                "reviewing every case is cheapest at these costs: every threshold that keeps "
                f"the error below {target_error:.2%} costs more per case than a review"
            ),
            curve=tuple(curve),
        )
    savings = human_only - best.cost_per_case
    return CostChoice(
        threshold=best.threshold,
        calibrated_threshold=calibrated,
        automation_rate=best.automation_rate,
        error_rate=best.error_rate,
        cost_per_case=best.cost_per_case,
        human_only_cost_per_case=human_only,
        savings_per_case=savings,
        savings_share=savings / human_only if human_only else 0.0,
        review_cost=float(review_cost),
        error_cost=float(error_cost),
        class_error_costs=MappingProxyType(class_costs),
        audit_rate=audit_rate,
        reason=(
            f"threshold {best.threshold:.6g} auto-decides {best.automation_rate:.1%} of cases "
            f"at {best.cost_per_case:.4g} per case against {human_only:.4g} reviewing "
            f"everything ({savings / human_only if human_only else 0:.1%} saved); its error "
            f"stays below {target_error:.2%} with {confidence:.0%} confidence (it is at or "
            f"above the calibrated threshold {calibrated:.6g})"
        ),
        curve=tuple(curve),
    )
