"""Seeded simulations of the drift check and the label-free accuracy on the demo generator.

The stated bounds (``docs/benchmarks.md`` has the measured figures, from
``bench/drift_simulation.py``):

* a stationary stream raises at most 1 false alarm per 10,000 cases (measured: 0);
* the demo's lighting change is detected within 150 cases (checks every 50 cases,
  two in a row; measured: median 100, p95 100) and names brightness;
* the label-free accuracy estimate is within 0.15 of the true accuracy on average over
  windows of 300 cases for each demo drift mode and the unshifted line.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from decisions.drift import label_free_accuracy
from tests.decisions.drift_pool import DRIFT_MODES, pool
from tests.decisions.drift_simulation import run_stream

FALSE_ALARMS_PER_10K = 1
DETECTED_WITHIN = 150
ESTIMATE_ERROR = 0.15


def test_a_stationary_stream_almost_never_alarms() -> None:
    results = [run_stream(seed=seed, cases=2_000) for seed in range(5)]
    cases = sum(result.cases for result in results)
    alarms = sum(result.alarms for result in results)
    assert cases == 10_000
    assert alarms <= FALSE_ALARMS_PER_10K, [r.first_alarm_metrics for r in results if r.alarms]


def test_a_lighting_change_is_detected_quickly_and_named_brightness() -> None:
    results = [
        run_stream(seed=seed, cases=400, drift="lighting", stop_at_first=True) for seed in range(8)
    ]
    delays = [result.first_alarm_after for result in results]
    assert all(delay is not None and delay <= DETECTED_WITHIN for delay in delays), delays
    assert all("brightness" in result.first_alarm_metrics for result in results)


@pytest.mark.parametrize("drift", [None, *DRIFT_MODES])
def test_the_label_free_estimate_tracks_the_true_accuracy(drift: str | None) -> None:
    reference_pool = pool(None)
    recent_pool = pool(drift) if drift else pool(None, seed=12)
    errors = []
    for seed in range(20):
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
        errors.append(estimate.estimate - float(recent.correct.mean()))
    assert float(np.mean(np.abs(errors))) <= ESTIMATE_ERROR, errors
