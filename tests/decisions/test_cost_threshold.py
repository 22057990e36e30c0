"""The cost-aware threshold: cheapest under the same error guarantee, with the savings."""

from __future__ import annotations

import numpy as np
import pytest

from decisions.stats import calibrate_threshold
from decisions.thresholds import ScoredLabel, cost_aware_threshold


def sample(seed: int, n: int = 3000) -> list[ScoredLabel]:
    rng = np.random.default_rng(seed)
    confidences = rng.beta(12.0, 1.0, size=n)
    correct = rng.random(n) < confidences**1.5
    labels = rng.choice(["ok", "crack"], size=n, p=[0.8, 0.2])
    return [
        ScoredLabel(str(label), float(c), bool(r))
        for label, c, r in zip(labels, confidences, correct, strict=True)
    ]


def brute_force_cost(scored, threshold, review, error, class_costs=None, audit=0.0) -> float:
    total = 0.0
    for s in scored:
        if s.confidence >= threshold:
            total += audit * review
            if not s.correct:
                total += (class_costs or {}).get(s.predicted, error)
        else:
            total += review
    return total / len(scored)


def test_the_choice_is_the_cheapest_threshold_the_guarantee_allows() -> None:
    scored = sample(1)
    choice = cost_aware_threshold(
        scored, target_error=0.05, confidence=0.95, review_cost=1.0, error_cost=10.0
    )
    calibrated = calibrate_threshold(
        [s.confidence for s in scored], [s.correct for s in scored], target_error=0.05
    ).threshold
    assert choice.calibrated_threshold == calibrated
    assert choice.threshold is not None and choice.threshold >= calibrated
    assert choice.cost_per_case == pytest.approx(
        brute_force_cost(scored, choice.threshold, 1.0, 10.0)
    )
    candidates = sorted({s.confidence for s in scored if s.confidence >= calibrated})
    cheapest = min(brute_force_cost(scored, t, 1.0, 10.0) for t in candidates[::25])
    assert choice.cost_per_case <= cheapest + 1e-12
    assert choice.savings_per_case == pytest.approx(1.0 - choice.cost_per_case)
    assert 0 < choice.savings_share < 1


def test_costlier_errors_raise_the_threshold() -> None:
    scored = sample(2)
    cheap = cost_aware_threshold(
        scored, target_error=0.05, confidence=0.95, review_cost=1.0, error_cost=2.0
    )
    dear = cost_aware_threshold(
        scored, target_error=0.05, confidence=0.95, review_cost=1.0, error_cost=60.0
    )
    assert cheap.threshold is not None and dear.threshold is not None
    assert dear.threshold >= cheap.threshold
    assert dear.automation_rate <= cheap.automation_rate


def test_a_per_class_cost_and_the_audit_cost_are_counted() -> None:
    scored = sample(3)
    choice = cost_aware_threshold(
        scored,
        target_error=0.05,
        confidence=0.95,
        review_cost=2.0,
        error_cost=5.0,
        class_error_costs={"crack": 80.0},
        audit_rate=0.05,
    )
    assert choice.threshold is not None
    assert choice.cost_per_case == pytest.approx(
        brute_force_cost(scored, choice.threshold, 2.0, 5.0, {"crack": 80.0}, 0.05)
    )


def test_without_a_guarantee_everything_goes_to_humans() -> None:
    choice = cost_aware_threshold(
        sample(4, n=50), target_error=0.01, confidence=0.95, review_cost=3.0, error_cost=1.0
    )
    assert choice.threshold is None and choice.cost_per_case == 3.0
    assert choice.savings_per_case == 0.0 and "human" in choice.reason


def test_when_every_automatic_decision_is_audited_automation_saves_nothing() -> None:
    choice = cost_aware_threshold(
        sample(5),
        target_error=0.05,
        confidence=0.95,
        review_cost=1.0,
        error_cost=100.0,
        audit_rate=1.0,
    )
    assert choice.threshold is None and "cheapest" in choice.reason


def test_bad_costs_are_refused() -> None:
    with pytest.raises(ValueError, match="costs"):
        cost_aware_threshold(
            sample(6), target_error=0.05, confidence=0.95, review_cost=-1, error_cost=1
        )
