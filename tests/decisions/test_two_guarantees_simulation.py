"""Seeded simulations of the two gates and the step down that watches each guarantee.

``partial`` promises the error among automatic decisions (the calibrated threshold);
``full`` promises overall accuracy; the step down at ``partial`` watches the audited
error of automatic decisions against ``target_error``. Each promise is checked over at
least 1,000 seeded draws from a model whose truth is known in closed form (the model
of test_stats_simulation.py). bench/simulate_guarantees.py prints the same figures at a
larger scale (docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

from decisions.gate import GatePolicy, evidence_judge, partial_judge
from decisions.routing import Level
from decisions.stats import step_down_error_check
from decisions.thresholds import ScoredLabel
from tests.decisions.test_stats_simulation import (
    draw_labelled_cases,
    true_automation_rate,
    true_error_among_auto_decided,
)

TARGET_ERROR, DELTA = 0.05, 0.05


def threshold_with_true_error(error: float) -> float:
    """The threshold whose true error among cases at or above it is ``error``."""
    grid = np.linspace(0.5, 0.9999, 200_001)
    errors = true_error_among_auto_decided(grid)  # decreasing in the threshold
    return float(grid[np.argmin(np.abs(errors - error))])


def gate_allows(confidences: np.ndarray, correct: np.ndarray, threshold: float) -> bool:
    scored = [
        ScoredLabel("ok", float(c), bool(r)) for c, r in zip(confidences, correct, strict=True)
    ]
    policy = GatePolicy(
        level=Level.PARTIAL,
        confidence_threshold=threshold,
        audit_rate=0.05,
        target_accuracy=0.95,
        min_evidence=200,
        target_error=TARGET_ERROR,
    )
    verdict = partial_judge(
        scored=scored,
        policy=policy,
        labels=["ok"],
        model_version="v1",
        since=None,
        target_error=TARGET_ERROR,
        min_evidence=200,
        confidence=1 - DELTA,
    )
    return verdict.sufficient


def test_the_partial_gate_lets_a_threshold_that_misses_the_target_through_rarely():
    """A policy threshold whose true error is just above target: allowed <= delta."""
    rng = np.random.default_rng(54)
    draws, n_labelled = 1000, 1500
    bad = threshold_with_true_error(TARGET_ERROR * 1.05)
    good = threshold_with_true_error(TARGET_ERROR * 0.5)
    assert true_error_among_auto_decided(bad) > TARGET_ERROR
    allowed_bad = allowed_good = 0
    for _ in range(draws):
        confidences, correct = draw_labelled_cases(rng, n_labelled)
        allowed_bad += gate_allows(confidences, correct, bad)
        allowed_good += gate_allows(confidences, correct, good)
    # measured: 0.019 of draws let the 5.25%-error threshold through (promised <= 0.05)
    assert allowed_bad / draws <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / draws)
    # and the gate is not bought by refusing everything: a threshold at half the target
    # error (true automation 36%) passes in most draws (measured 0.747 on 1,500 labels)
    assert allowed_good / draws >= 0.65
    assert true_automation_rate(good) > 0.3


def test_the_full_gate_passes_a_model_at_the_target_no_more_often_than_delta():
    """True accuracy exactly at target_accuracy: 'lower bound >= target' <= delta."""
    rng = np.random.default_rng(55)
    draws, n, target = 2000, 500, 0.95
    successes = rng.binomial(n, target, size=draws)
    verdicts = {
        int(s): evidence_judge(
            level=Level.FULL,
            successes=int(s),
            n=n,
            model_version="v1",
            since=None,
            target_accuracy=target,
            min_evidence=200,
            confidence=1 - DELTA,
        ).sufficient
        for s in np.unique(successes)
    }
    allowed = np.array([verdicts[int(s)] for s in successes])
    # the exact test is conservative (binomial discreteness): at most delta
    assert allowed.mean() <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / draws)
    better = rng.binomial(n, 0.98, size=draws)
    passing = [
        evidence_judge(
            level=Level.FULL,
            successes=int(s),
            n=n,
            model_version="v1",
            since=None,
            target_accuracy=target,
            min_evidence=200,
            confidence=1 - DELTA,
        ).sufficient
        for s in np.unique(better)
    ]
    assert any(passing)


# --- the step down of partial: audited error of automatic decisions vs target_error ---

WINDOW, STEP_CONFIDENCE, MIN_SAMPLES, TARGET = 200, 0.99, 20, 0.02


def error_table() -> np.ndarray:
    """fires[n, errors] of the real step_down_error_check for windows of n audits."""
    fires = np.zeros((WINDOW + 1, WINDOW + 1), dtype=bool)
    for n in range(WINDOW + 1):
        for errors in range(n + 1):
            verdict = step_down_error_check(
                errors, n, target_error=TARGET, confidence=STEP_CONFIDENCE, min_samples=MIN_SAMPLES
            )
            if verdict.step_down:
                fires[n, errors:] = True
                break
    return fires


def sliding(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    totals = np.concatenate(
        [np.zeros((errors.shape[0], 1), dtype=np.int32), np.cumsum(errors, 1, dtype=np.int32)],
        axis=1,
    )
    after = np.arange(1, errors.shape[1] + 1)
    start = np.maximum(after - WINDOW, 0)
    return totals[:, after] - totals[:, start], after - start


def test_the_partial_step_down_catches_a_drop_fast_and_rarely_fires_falsely():
    fires = error_table()
    rng = np.random.default_rng(56)
    streams = 1000
    # stable: automatic decisions wrong 1% of the time against a 2% target
    length = 5000
    wrong, size = sliding(rng.random((streams, length)) < 0.01)
    fired = fires[size, wrong]
    # measured: 0.007 of 1,000 streams of 5,000 audits saw a false step down
    # (per check 1.7e-5: one false step down per ~700,000 audits)
    assert fired.any(axis=1).mean() <= 0.02
    # a drop to 6% error among automatic decisions after a full window at 1%
    before = rng.random((streams, WINDOW)) < 0.01
    after = rng.random((streams, 3 * WINDOW)) < 0.06
    wrong, size = sliding(np.concatenate([before, after], axis=1))
    fired = fires[size[WINDOW:], wrong[:, WINDOW:]]
    delay = np.where(fired.any(axis=1), fired.argmax(axis=1) + 1.0, np.inf)
    # measured: median 148 audits after the drop, p90 257, 99.8% caught within 3 windows
    assert np.median(delay) <= 180
    assert np.percentile(delay, 90) <= 320
    assert np.isfinite(delay).mean() >= 0.99
