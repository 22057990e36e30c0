"""Measure, at scale, what decisions/stats.py promises; print the figures.

    python bench/simulate_guarantees.py [--scale 0.2] [--seed 1]

1. Coverage of nominal 95% Clopper-Pearson intervals per (true accuracy, n):
   exact (summed over the binomial distribution) and over simulated draws.
2. Threshold calibration (Learn-then-Test, fixed sequence): over many
   labelled sets drawn from a model whose truth is known in closed form, the
   share whose recommended threshold keeps the TRUE error below target
   (promised: >= confidence), and the automation it achieves against the
   oracle threshold; plus the flat-error stress case (error = target
   everywhere, where any recommendation breaks the promise).
3. Stepping down on a sliding window of audits: detection delay of an
   accuracy drop, and false step-downs of a stable model.

Pure numpy/scipy and the real functions; seeded; about a minute at scale 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps
from scipy.special import beta as beta_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decisions.stats import (
    calibrate_threshold,
    clopper_pearson,
    first_tested_size,
    step_down_check,
)

# The known model of tests/automation/test_stats_simulation.py:
# confidence ~ Beta(12, 1), P(wrong | confidence c) = 1 - c**1.5.
CONFIDENCE_SHAPE = (12.0, 1.0)
OVERCONFIDENCE = 1.5


def true_automation_rate(threshold: np.ndarray | float) -> np.ndarray:
    """P(confidence >= threshold) under the known model."""
    return sps.beta.sf(threshold, *CONFIDENCE_SHAPE)


def true_error_among_auto_decided(threshold: np.ndarray | float) -> np.ndarray:
    """P(wrong | confidence >= threshold), in closed form."""
    a, b = CONFIDENCE_SHAPE
    weight = beta_function(a + OVERCONFIDENCE, b) / beta_function(a, b)
    right = weight * sps.beta.sf(threshold, a + OVERCONFIDENCE, b)
    return 1.0 - right / true_automation_rate(threshold)


def oracle_threshold(target_error: float) -> float:
    """Lowest threshold whose true error among auto-decided cases is <= target."""
    grid = np.linspace(0.3, 1.0 - 1e-7, 400_001)
    return float(grid[true_error_among_auto_decided(grid) <= target_error].min())


# ---------------------------------------------------------------------------
# 1. Interval coverage
# ---------------------------------------------------------------------------


def interval_coverage(rng: np.random.Generator, draws: int) -> None:
    print("\n1. Coverage of nominal 95% Clopper-Pearson intervals (promised: >= 95%)")
    print(f"   exact coverage / coverage over {draws:,} simulated draws")
    sizes = (10, 30, 100, 300, 1000)
    print("   true p  " + "".join(f"{f'n={n}':>18}" for n in sizes))
    worst = 1.0
    for accuracy in (0.5, 0.8, 0.9, 0.95, 0.97, 0.99):
        cells = []
        for n in sizes:
            intervals = [clopper_pearson(successes, n) for successes in range(n + 1)]
            covers = np.array([i.low <= accuracy <= i.high for i in intervals])
            exact = float(sps.binom.pmf(np.arange(n + 1), n, accuracy) @ covers)
            simulated = float(covers[rng.binomial(n, accuracy, size=draws)].mean())
            worst = min(worst, exact)
            cells.append(f"{exact:8.4f} /{simulated:7.4f}")
        print(f"   {accuracy:<6}  " + "".join(f"{cell:>18}" for cell in cells))
    print(f"   lowest exact coverage in the table: {worst:.4f}")


# ---------------------------------------------------------------------------
# 2. Threshold calibration
# ---------------------------------------------------------------------------


def calibration_guarantee(rng: np.random.Generator, draws: int, target_error: float) -> None:
    confidence = 0.95
    oracle = oracle_threshold(target_error)
    print(
        f"\n2. Calibrated threshold, target error {target_error:.0%}, {confidence:.0%} "
        f"confidence (promised: true error < target in >= {confidence:.0%} of draws)"
    )
    print(
        f"   model: {1 - true_error_among_auto_decided(0.0):.1%} accurate overall; oracle "
        f"threshold {oracle:.4f} automates {true_automation_rate(oracle):.1%}"
    )
    print("   labelled  draws  target met  got a threshold  mean automation  of oracle  seconds")
    for n_labelled in (500, 1000, 2000, 5000, 10000):
        started = time.perf_counter()
        thresholds = np.full(draws, np.nan)
        for draw in range(draws):
            confidences = rng.beta(*CONFIDENCE_SHAPE, size=n_labelled)
            correct = rng.random(n_labelled) >= 1.0 - confidences**OVERCONFIDENCE
            result = calibrate_threshold(
                confidences, correct, target_error=target_error, confidence=confidence
            )
            if result.threshold is not None:
                thresholds[draw] = result.threshold
        chosen = ~np.isnan(thresholds)
        met = np.ones(draws, dtype=bool)
        met[chosen] = true_error_among_auto_decided(thresholds[chosen]) < target_error
        automation = np.zeros(draws)
        automation[chosen] = true_automation_rate(thresholds[chosen])
        share_of_oracle = automation.mean() / true_automation_rate(oracle)
        print(
            f"   {n_labelled:>8}  {draws:>5}  {met.mean():>10.4f}  {chosen.mean():>15.3f}"
            f"  {automation.mean():>15.3f}  {share_of_oracle:>9.1%}"
            f"  {time.perf_counter() - started:>7.1f}"
        )


def flat_error_stress(rng: np.random.Generator, draws: int, target_error: float) -> None:
    confidence, n_labelled = 0.95, 1000
    n_start = first_tested_size(target_error, confidence)
    errors = np.arange(n_start + 1)
    passing = errors[sps.binom.cdf(errors, n_start, target_error) < 1 - confidence]
    exact = float(sps.binom.cdf(passing.max(), n_start, target_error)) if passing.size else 0.0
    recommended = 0
    for _ in range(draws):
        confidences = rng.random(n_labelled)
        correct = rng.random(n_labelled) >= target_error
        result = calibrate_threshold(
            confidences, correct, target_error=target_error, confidence=confidence
        )
        recommended += result.threshold is not None
    print(
        f"   flat-error stress (true error = {target_error:.0%} at every threshold, "
        f"{n_labelled} labels, {draws:,} draws): a threshold was recommended in "
        f"{recommended / draws:.4f} of draws (exact {exact:.4f}; promised <= "
        f"{1 - confidence:.2f})"
    )


# ---------------------------------------------------------------------------
# 3. Stepping down
# ---------------------------------------------------------------------------


def step_down_table(window: int, target: float, confidence: float) -> np.ndarray:
    """decision[n, s] of the real step_down_check, by bisection per window size."""
    decision = np.zeros((window + 1, window + 1), dtype=bool)
    for n in range(window + 1):
        low, high = -1, n
        while low < high:
            middle = (low + high + 1) // 2
            verdict = step_down_check(middle, n, target_accuracy=target, confidence=confidence)
            low, high = (middle, high) if verdict.step_down else (low, middle - 1)
        decision[n, : low + 1] = True
    return decision


def window_counts(audits: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Successes and size of the sliding window after each audit, per stream."""
    streams = audits.shape[0]
    totals = np.concatenate(
        [np.zeros((streams, 1), dtype=np.int32), np.cumsum(audits, 1, dtype=np.int32)], axis=1
    )
    after = np.arange(1, audits.shape[1] + 1)
    start = np.maximum(after - window, 0)
    return totals[:, after] - totals[:, start], after - start


def detection_delays(
    rng: np.random.Generator,
    decision: np.ndarray,
    window: int,
    good: float,
    dropped: float,
    streams: int,
) -> np.ndarray:
    """Audits after the drop until the first step-down (inf if none within 3 windows)."""
    horizon = 3 * window
    audits = np.concatenate(
        [rng.random((streams, window)) < good, rng.random((streams, horizon)) < dropped], axis=1
    )
    successes, size = window_counts(audits, window)
    fired = decision[size[window:], successes[:, window:]]
    return np.where(fired.any(axis=1), fired.argmax(axis=1) + 1.0, np.inf)


def false_step_downs(
    rng: np.random.Generator,
    decision: np.ndarray,
    window: int,
    good: float,
    streams: int,
    length: int,
) -> tuple[float, float, float]:
    """Per-check rate, share of streams with any, and audits per false step-down."""
    successes, size = window_counts(rng.random((streams, length)) < good, window)
    fired = decision[size, successes]
    any_fired = fired.any(axis=1)
    exposure = np.where(any_fired, fired.argmax(axis=1) + 1, length).sum()
    per_alarm = exposure / any_fired.sum() if any_fired.any() else float("inf")
    return float(fired.mean()), float(any_fired.mean()), float(per_alarm)


def step_down_behaviour(rng: np.random.Generator, streams: int) -> None:
    target, good, length = 0.95, 0.97, 20_000
    print(
        f"\n3. Step-down on a sliding window of audits (target accuracy {target:.0%}, "
        f"stable model {good:.0%}, min_samples 20)"
    )
    print(
        "   window  conf  drop to | delay p50   p90   p99   max  unseen | false step-downs:"
        f" per check  streams with one in {length:,} audits  audits per false step-down"
    )
    for window, confidence in ((100, 0.95), (200, 0.95), (400, 0.95), (200, 0.99)):
        decision = step_down_table(window, target, confidence)
        false_streams = max(streams // 5, 50)
        per_check, any_share, per_alarm = false_step_downs(
            rng, decision, window, good, false_streams, length
        )
        spacing = (
            f"{per_alarm:,.0f}" if np.isfinite(per_alarm) else f"none in {false_streams * length:,}"
        )
        for dropped in (0.87, 0.92):
            delays = detection_delays(rng, decision, window, good, dropped, streams)
            shown = [
                f"{value:.0f}" if np.isfinite(value) else f">{3 * window}"
                for value in np.percentile(delays, [50, 90, 99, 100], method="higher")
            ]
            unseen = float(np.isinf(delays).mean())
            print(
                f"   {window:>6}  {confidence:.2f}  {dropped:>7.2f} | {shown[0]:>9} {shown[1]:>5}"
                f" {shown[2]:>5} {shown[3]:>5}  {unseen:>6.3f} |"
                f" {per_check:>27.2e}  {any_share:>33.3f}  {spacing:>26}"
            )
    print(
        f"   delays count audits after the drop (window full of {good:.0%} audits before it);"
        f" unseen: no step-down within 3 windows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply all draw counts")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    rng = np.random.default_rng(options.seed)
    started = time.perf_counter()
    interval_coverage(rng, draws=max(int(20_000 * options.scale), 100))
    for target_error in (0.05, 0.02):
        draws = max(int(2000 * options.scale), 20)
        calibration_guarantee(rng, draws, target_error)
        flat_error_stress(rng, max(int(4000 * options.scale), 20), target_error)
    step_down_behaviour(rng, streams=max(int(5000 * options.scale), 100))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
