"""False alarms, detection delay and label-free accuracy error of the drift check, on the
demo generator (the figures in docs/benchmarks.md).

    PYTHONPATH=. .venv/bin/python bench/drift_simulation.py [--stationary-streams 10]
        [--drift-streams 40]

Uses the same pools and stream simulation as tests/decisions/test_drift_simulation.py.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from decisions.drift import DriftConfig, label_free_accuracy
from tests.decisions.drift_pool import DRIFT_MODES, pool
from tests.decisions.drift_simulation import EVERY, REFERENCE, WINDOW, run_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stationary-streams", type=int, default=10)
    parser.add_argument("--drift-streams", type=int, default=40)
    args = parser.parse_args()
    config = DriftConfig()
    print(f"config: {config}; reference {REFERENCE} cases, window {WINDOW}, check every {EVERY}")
    started = time.perf_counter()
    stationary = [run_stream(seed=1000 + s, cases=2_000) for s in range(args.stationary_streams)]
    cases = sum(r.cases for r in stationary)
    alarms = sum(r.alarms for r in stationary)
    seconds = time.perf_counter() - started
    print(
        f"stationary: {alarms} alarms in {cases} cases "
        f"({alarms / cases * 10_000:.2f} per 10,000); {seconds / (cases / EVERY) * 1000:.0f} ms "
        "per check"
    )
    for drift in DRIFT_MODES:
        runs = [
            run_stream(seed=2000 + s, cases=600, drift=drift, stop_at_first=True)
            for s in range(args.drift_streams)
        ]
        delays = [r.first_alarm_after for r in runs if r.first_alarm_after is not None]
        named = Counter(name for r in runs for name in r.first_alarm_metrics)
        if delays:
            print(
                f"{drift}: detected in {len(delays)}/{len(runs)} streams, delay median "
                f"{np.median(delays):.0f}, p95 {np.percentile(delays, 95):.0f} cases; "
                f"named: {dict(named.most_common())}"
            )
        else:
            print(f"{drift}: not detected within 600 cases in any of {len(runs)} streams")
    reference_pool = pool(None)
    for drift in (None, *DRIFT_MODES):
        recent_pool = pool(drift) if drift else pool(None, seed=12)
        errors, truths, estimates = [], [], []
        for seed in range(50):
            rng = np.random.default_rng(seed)
            reference = reference_pool.take(rng.integers(0, len(reference_pool), 300))
            recent = recent_pool.take(rng.integers(0, len(recent_pool), 300))
            estimate = label_free_accuracy(
                recent_confidences=recent.values["confidence"],
                reference_confidences=reference.values["confidence"],
                reference_correct=list(reference.correct),
                reference_mix=Counter(reference.truth.tolist()),
                recent_labels=recent.labels.tolist(),
            )
            truths.append(float(recent.correct.mean()))
            estimates.append(estimate.estimate)
            errors.append(abs(estimate.estimate - truths[-1]))
        print(
            f"label-free {drift or 'none'}: true {np.mean(truths):.3f}, estimate "
            f"{np.mean(estimates):.3f}, mean abs error {np.mean(errors):.3f}, "
            f"p95 {np.percentile(errors, 95):.3f}"
        )


if __name__ == "__main__":
    main()
