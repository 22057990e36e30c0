"""The pure helpers added for the automation page: labels still needed, confidence drift,
and the chart geometry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automation.charts import _nice_ceiling, risk_coverage_chart
from decisions.stats import (
    binomial_lower_bound,
    confidence_drift,
    evidence_for_level,
    labels_needed_at_accuracy,
)


class TestLabelsNeeded:
    def test_known_values(self) -> None:
        assert labels_needed_at_accuracy(1.0, 0.95) == 59
        assert labels_needed_at_accuracy(1.0, 0.9, min_evidence=100) == 100
        assert labels_needed_at_accuracy(0.9, 0.9) is None
        assert labels_needed_at_accuracy(0.85, 0.9) is None

    @settings(max_examples=150, deadline=None)
    @given(
        accuracy=st.floats(min_value=0.5, max_value=1.0),
        target=st.floats(min_value=0.3, max_value=0.99),
        min_evidence=st.integers(min_value=0, max_value=500),
    )
    def test_the_answer_passes_the_gate_and_one_less_does_not(
        self, accuracy: float, target: float, min_evidence: int
    ) -> None:
        needed = labels_needed_at_accuracy(
            accuracy, target, min_evidence=min_evidence, max_n=20_000
        )
        if needed is None:
            assert (
                accuracy <= target
                or binomial_lower_bound(int(accuracy * 20_000 + 1e-9), 20_000) < target
            )
            return
        successes = int(accuracy * needed + 1e-9)
        verdict = evidence_for_level(
            successes, needed, target_accuracy=target, min_evidence=min_evidence
        )
        assert verdict.sufficient
        smaller = needed - 1
        if smaller >= max(min_evidence, 1):
            assert not evidence_for_level(
                int(accuracy * smaller + 1e-9),
                smaller,
                target_accuracy=target,
                min_evidence=min_evidence,
            ).sufficient


class TestConfidenceDrift:
    def test_a_shift_is_found_and_small_samples_are_not_judged(self) -> None:
        rng = np.random.default_rng(1)
        reference = rng.beta(12, 1, 300)
        verdict = confidence_drift(reference, rng.beta(5, 1, 300))
        assert verdict.drifted and verdict.p_value < 0.001
        assert verdict.recent_mean < verdict.reference_mean
        small = confidence_drift(reference, rng.beta(5, 1, 50))
        assert not small.drifted and "need 100" in small.reason

    def test_false_alarms_stay_below_the_p_value_over_1000_draws(self) -> None:
        rng = np.random.default_rng(2)
        alarms = sum(
            confidence_drift(rng.beta(12, 1, 300), rng.beta(12, 1, 300)).drifted
            for _ in range(1000)
        )
        assert alarms <= 5, alarms  # expected about 1 at p = 0.001

    def test_bad_input_is_refused(self) -> None:
        with pytest.raises(ValueError):
            confidence_drift([0.5] * 100, [1.5] * 100)
        with pytest.raises(ValueError):
            confidence_drift([0.5], [0.5], p_value=0.0)


class TestChart:
    def test_nice_ceiling(self) -> None:
        assert [_nice_ceiling(v) for v in (0.03, 0.05, 0.06, 0.21, 0.3, 0.9, 2.0)] == [
            0.05,
            0.05,
            0.1,
            0.25,
            0.5,
            1.0,
            1.0,
        ]

    def test_no_points_no_chart(self) -> None:
        assert risk_coverage_chart([], target_error=0.05, current=None, recommended=None) is None

    def test_geometry_stays_inside_the_plot(self) -> None:
        curve = [
            {
                "threshold": t,
                "automation_rate": 1 - t,
                "n_auto": 100,
                "errors": 5,
                "error_rate": 0.05 * (1 - t),
                "error_upper_bound": min(1.0, 0.3 * (1 - t) + 0.01),
            }
            for t in (0.9, 0.5, 0.1)
        ]
        chart = risk_coverage_chart(
            curve,
            target_error=0.05,
            current=curve[1],
            recommended={"threshold": 0.9, "expected_automation_rate": 0.1, "error_rate": 0.005},
        )
        assert chart is not None and chart.current is not None and chart.recommended is not None
        numbers = [
            float(part.strip("MLZ").split(",")[i])
            for part in chart.bound_path.split()
            for i in (0, 1)
        ]
        xs, ys = numbers[0::2], numbers[1::2]
        assert all(chart.left <= x <= chart.right for x in xs)
        assert all(chart.top <= y <= chart.bottom for y in ys)
        assert chart.target_y is not None and chart.top < chart.target_y < chart.bottom
        assert chart.recommended.diamond.startswith("M")
