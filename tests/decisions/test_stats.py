"""Exact and property tests for decisions/stats.py (pure: no Django needed)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from decisions.stats import (
    DEFAULT_THRESHOLD_GRID,
    ClassMetrics,
    Interval,
    McNemarResult,
    ReliabilityBin,
    binomial_lower_bound,
    binomial_upper_bound,
    calibrate_threshold,
    clopper_pearson,
    cohen_kappa,
    cohen_kappa_from_pairs,
    confusion_matrix,
    evidence_for_level,
    expected_calibration_error,
    first_tested_size,
    fleiss_kappa,
    labels_needed_without_errors,
    mcnemar_exact,
    per_class_metrics,
    percent_agreement,
    reliability_bins,
    risk_coverage_curve,
    step_down_check,
)

EXACT = 1e-12

counts = st.integers(min_value=0, max_value=2000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
levels = st.floats(min_value=0.5, max_value=0.999)


# ---------------------------------------------------------------------------
# Clopper-Pearson and one-sided bounds against scipy's exact intervals
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "confidence"),
    [
        (0, 1, 0.95),
        (1, 1, 0.95),
        (7, 20, 0.95),
        (19, 20, 0.9),
        (50, 100, 0.99),
        (0, 300, 0.95),
        (300, 300, 0.95),
        (287, 300, 0.95),
        (1, 12345, 0.8),
    ],
)
def test_clopper_pearson_matches_scipy_exact_interval(successes, n, confidence):
    expected = sps.binomtest(successes, n).proportion_ci(confidence, method="exact")
    interval = clopper_pearson(successes, n, confidence)
    assert interval == Interval(
        estimate=pytest.approx(successes / n),
        low=pytest.approx(expected.low, abs=EXACT),
        high=pytest.approx(expected.high, abs=EXACT),
        successes=successes,
        n=n,
        confidence=confidence,
    )


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (3, 10), (10, 10), (290, 300), (5, 7)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_one_sided_bounds_match_scipy_one_sided_exact_intervals(successes, n, confidence):
    lower = sps.binomtest(successes, n, alternative="greater").proportion_ci(confidence)
    upper = sps.binomtest(successes, n, alternative="less").proportion_ci(confidence)
    assert binomial_lower_bound(successes, n, confidence) == pytest.approx(lower.low, abs=EXACT)
    assert binomial_upper_bound(successes, n, confidence) == pytest.approx(upper.high, abs=EXACT)


def test_bounds_at_the_extremes_have_closed_forms():
    # zero failures in n: lower bound delta^(1/n); zero successes: upper 1 - delta^(1/n)
    assert binomial_lower_bound(300, 300) == pytest.approx(0.05 ** (1 / 300), abs=EXACT)
    assert binomial_upper_bound(0, 300) == pytest.approx(1 - 0.05 ** (1 / 300), abs=EXACT)
    assert binomial_lower_bound(0, 300) == 0.0
    assert binomial_upper_bound(300, 300) == 1.0


def test_no_observations_give_the_vacuous_interval():
    assert clopper_pearson(0, 0) == Interval(0.0, 0.0, 1.0, 0, 0, 0.95)
    assert binomial_lower_bound(0, 0) == 0.0
    assert binomial_upper_bound(0, 0) == 1.0


@pytest.mark.parametrize(
    ("successes", "n", "confidence"),
    [(-1, 5, 0.95), (6, 5, 0.95), (0, -1, 0.95), (1, 2, 0.0), (1, 2, 1.0), (1, 2, 1.5)],
)
def test_invalid_bound_arguments_raise(successes, n, confidence):
    for bound in (clopper_pearson, binomial_lower_bound, binomial_upper_bound):
        with pytest.raises(ValueError):
            bound(successes, n, confidence)


@given(counts, levels)
def test_interval_is_ordered_and_inside_unit_range(pair, confidence):
    successes, n = pair
    interval = clopper_pearson(successes, n, confidence)
    assert 0.0 <= interval.low <= interval.estimate <= interval.high <= 1.0
    assert not any(math.isnan(x) for x in (interval.estimate, interval.low, interval.high))


@given(counts, levels)
def test_one_sided_bounds_are_tighter_than_two_sided_at_same_confidence(pair, confidence):
    successes, n = pair
    interval = clopper_pearson(successes, n, confidence)
    lower = binomial_lower_bound(successes, n, confidence)
    upper = binomial_upper_bound(successes, n, confidence)
    assert interval.low <= lower <= interval.estimate <= upper <= interval.high


@given(counts, levels)
def test_bounds_are_monotone_in_successes(pair, confidence):
    successes, n = pair
    assume(successes < n)
    assert binomial_lower_bound(successes, n, confidence) <= binomial_lower_bound(
        successes + 1, n, confidence
    )
    assert binomial_upper_bound(successes, n, confidence) <= binomial_upper_bound(
        successes + 1, n, confidence
    )
    now, more = (
        clopper_pearson(successes, n, confidence),
        clopper_pearson(successes + 1, n, confidence),
    )
    assert now.low <= more.low and now.high <= more.high


@given(counts, levels, levels)
def test_interval_widens_with_confidence(pair, first, second):
    successes, n = pair
    lower_level, higher_level = sorted((first, second))
    narrow = clopper_pearson(successes, n, lower_level)
    wide = clopper_pearson(successes, n, higher_level)
    assert wide.low <= narrow.low and narrow.high <= wide.high
    assert binomial_lower_bound(successes, n, higher_level) <= binomial_lower_bound(
        successes, n, lower_level
    )
    assert binomial_upper_bound(successes, n, lower_level) <= binomial_upper_bound(
        successes, n, higher_level
    )


@given(st.integers(min_value=1, max_value=500), levels)
def test_upper_bound_is_where_the_exact_tail_equals_delta(n, confidence):
    # P(X <= k | n, upper) = 1 - confidence defines the exact upper bound
    successes = n // 3
    upper = binomial_upper_bound(successes, n, confidence)
    assert sps.binom.cdf(successes, n, upper) == pytest.approx(1 - confidence, rel=1e-6)


# ---------------------------------------------------------------------------
# Risk-coverage curve
# ---------------------------------------------------------------------------


def test_curve_counts_cases_at_or_above_each_threshold():
    confidences = [0.99, 0.95, 0.95, 0.9, 0.6]
    correct = [True, True, False, True, False]
    points = risk_coverage_curve(confidences, correct, thresholds=[0.95, 0.6, 0.97, 1.0])
    at_095, at_06, at_097, at_1 = points
    assert (at_095.threshold, at_095.n_auto, at_095.errors) == (0.95, 3, 1)
    assert at_095.automation_rate == pytest.approx(3 / 5)
    assert at_095.error_rate == pytest.approx(1 / 3)
    assert at_095.error_upper_bound == pytest.approx(binomial_upper_bound(1, 3), abs=EXACT)
    assert (at_06.n_auto, at_06.errors, at_06.automation_rate) == (5, 2, 1.0)
    assert (at_097.n_auto, at_097.errors) == (1, 0)
    assert (at_1.n_auto, at_1.error_rate, at_1.error_upper_bound) == (0, 0.0, 1.0)


def test_curve_default_thresholds_are_observed_confidences_and_grid_descending():
    confidences = [0.333, 0.5, 0.875]
    points = risk_coverage_curve(confidences, [True, False, True])
    thresholds = [point.threshold for point in points]
    assert thresholds == sorted(set(confidences) | set(DEFAULT_THRESHOLD_GRID), reverse=True)
    assert all(type(point.automation_rate) is float for point in points)
    by_threshold = {point.threshold: point for point in points}
    assert by_threshold[0.875].n_auto == 1
    assert by_threshold[0.5].n_auto == 2
    assert by_threshold[0.0].n_auto == 3


def test_curve_of_no_cases_is_all_empty_points():
    points = risk_coverage_curve([], [])
    assert len(points) == len(DEFAULT_THRESHOLD_GRID)
    assert all(p.n_auto == 0 and p.automation_rate == 0.0 for p in points)


@pytest.mark.parametrize(
    ("confidences", "correct"), [([0.5], [True, False]), ([1.5], [True]), ([math.nan], [True])]
)
def test_curve_rejects_bad_inputs(confidences, correct):
    with pytest.raises(ValueError):
        risk_coverage_curve(confidences, correct)


# ---------------------------------------------------------------------------
# Threshold calibration (Learn-then-Test, fixed sequence)
# ---------------------------------------------------------------------------


def reference_calibration(confidences, correct, target_error, confidence, min_auto):
    """Straightforward re-implementation: scan distinct confidences downwards."""
    start = first_tested_size(target_error, confidence, min_auto)
    chosen = None
    for threshold in sorted(set(confidences), reverse=True):
        auto = [ok for c, ok in zip(confidences, correct, strict=True) if c >= threshold]
        if len(auto) < start:
            continue
        errors = auto.count(False)
        p_value = sps.binomtest(errors, len(auto), target_error, alternative="less").pvalue
        if p_value >= 1 - confidence:
            break
        chosen = threshold
    return chosen


def test_labels_needed_without_errors_is_the_zero_error_sample_size():
    assert labels_needed_without_errors(0.01) == 299
    assert labels_needed_without_errors(0.05) == 59
    assert 0.99**299 < 0.05 <= 0.99**298
    assert first_tested_size(0.05) == 118
    assert first_tested_size(0.05, min_auto=500) == 500


def test_all_correct_labels_automate_everything():
    confidences = [0.5 + i / 1000 for i in range(300)]
    result = calibrate_threshold(confidences, [True] * 300, target_error=0.05)
    assert result.threshold == pytest.approx(0.5)
    assert result.expected_automation_rate == 1.0
    assert (result.error_rate, result.n_labelled) == (0.0, 300)
    assert result.error_upper_bound == pytest.approx(binomial_upper_bound(0, 300), abs=EXACT)
    assert result.error_upper_bound < 0.05
    assert "below the target 5.0%" in result.reason


def test_all_wrong_labels_automate_nothing():
    confidences = [0.5 + i / 1000 for i in range(300)]
    result = calibrate_threshold(confidences, [False] * 300, target_error=0.05)
    assert result.threshold is None
    assert (result.expected_automation_rate, result.error_upper_bound) == (0.0, 1.0)
    assert "more labels or a better model" in result.reason


def test_too_few_labels_say_more_labels_are_needed():
    result = calibrate_threshold([0.99] * 120, [True] * 120, target_error=0.01)
    assert result.threshold is None
    assert result.reason.startswith(
        "no threshold keeps the error below 1.0% with 95% confidence on 120 labelled cases; "
        "need more labels"
    )


def test_no_labels_give_no_threshold():
    result = calibrate_threshold([], [], target_error=0.05)
    assert (result.threshold, result.n_labelled) == (None, 0)


def test_errors_among_low_confidences_set_the_threshold_above_them():
    # 400 correct cases at high confidence, then 100 cases at 0.3 with 50 errors
    confidences = [0.6 + i / 1000 for i in range(400)] + [0.3] * 100
    correct = [True] * 400 + [True, False] * 50
    result = calibrate_threshold(confidences, correct, target_error=0.05)
    assert result.threshold == pytest.approx(0.6)
    assert result.expected_automation_rate == pytest.approx(0.8)


def test_a_confidence_exactly_at_the_threshold_is_auto_decided():
    confidences = [0.9] * 200 + [0.8] * 50
    correct = [True] * 200 + [False] * 50
    result = calibrate_threshold(confidences, correct, target_error=0.05)
    assert result.threshold == 0.9
    assert result.expected_automation_rate == pytest.approx(200 / 250)


def test_scan_stops_at_the_first_failed_threshold_even_if_lower_ones_would_pass():
    # top 200 clean, then a band of 30 with 20 errors, then 2000 clean cases
    confidences = [0.99 - i * 1e-4 for i in range(200)]
    confidences += [0.9 - i * 1e-4 for i in range(30)]
    confidences += [0.8 - i * 1e-4 for i in range(2000)]
    correct = [True] * 200 + [False] * 20 + [True] * 10 + [True] * 2000
    result = calibrate_threshold(confidences, correct, target_error=0.05)
    every_case = sps.binomtest(20, 2230, 0.05, alternative="less").pvalue
    assert every_case < 0.05  # the lowest threshold alone would pass ...
    assert result.threshold is not None and result.threshold > 0.8  # ... but is never reached
    assert result.threshold == reference_calibration(confidences, correct, 0.05, 0.95, 1)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=40), st.booleans()),
        min_size=0,
        max_size=250,
    ),
    st.sampled_from([0.1, 0.2, 0.3]),
    st.sampled_from([0.8, 0.9, 0.95]),
    st.integers(min_value=1, max_value=80),
)
def test_calibration_matches_a_plain_reference_scan(cases, target_error, confidence, min_auto):
    confidences = [level / 40 for level, _ in cases]
    correct = [ok for _, ok in cases]
    result = calibrate_threshold(
        confidences,
        correct,
        target_error=target_error,
        confidence=confidence,
        min_auto=min_auto,
    )
    assert result.threshold == reference_calibration(
        confidences, correct, target_error, confidence, min_auto
    )
    if result.threshold is not None:
        assert result.error_upper_bound < target_error
        auto = [ok for c, ok in zip(confidences, correct, strict=True) if c >= result.threshold]
        assert result.expected_automation_rate == pytest.approx(len(auto) / len(cases))
        assert result.error_rate == pytest.approx(auto.count(False) / len(auto))


@pytest.mark.parametrize("target_error", [0.0, 1.0, -0.1])
def test_calibration_rejects_impossible_targets(target_error):
    with pytest.raises(ValueError):
        calibrate_threshold([0.9], [True], target_error=target_error)


# ---------------------------------------------------------------------------
# Evidence for a level, and stepping down
# ---------------------------------------------------------------------------


def test_evidence_needs_enough_cases():
    verdict = evidence_for_level(40, 40, target_accuracy=0.9, min_evidence=200)
    assert not verdict.sufficient
    assert verdict.reason.startswith("only 40 human-labelled cases, 200 needed")


def test_evidence_needs_the_lower_bound_to_reach_the_target():
    verdict = evidence_for_level(290, 300, target_accuracy=0.95, min_evidence=200)
    assert not verdict.sufficient
    assert verdict.lower_bound == pytest.approx(binomial_lower_bound(290, 300), abs=EXACT)
    assert verdict.reason == (
        "accuracy lower bound 94.4% is below the target 95.0% (n=300, 95% confidence)"
    )
    assert verdict.accuracy == clopper_pearson(290, 300)


def test_evidence_is_sufficient_when_both_conditions_hold():
    verdict = evidence_for_level(995, 1000, target_accuracy=0.98, min_evidence=500)
    assert verdict.sufficient
    assert verdict.lower_bound >= 0.98
    assert "meets the target 98.0%" in verdict.reason


def test_evidence_reason_never_prints_equal_numbers_for_a_shortfall():
    # lower bound just under the target must not read "95.0% is below the target 95.0%"
    successes = next(s for s in range(3000, 0, -1) if binomial_lower_bound(s, 3000) < 0.95)
    verdict = evidence_for_level(successes, 3000, target_accuracy=0.95, min_evidence=1)
    shown = verdict.reason.split("accuracy lower bound ")[1].split(" is below")[0]
    assert shown != "95.0%"


def test_evidence_with_no_cases_is_insufficient():
    verdict = evidence_for_level(0, 0, target_accuracy=0.9, min_evidence=0)
    assert not verdict.sufficient and verdict.lower_bound == 0.0


@given(counts, st.floats(min_value=0.0, max_value=1.0), st.integers(0, 3000))
def test_evidence_is_exactly_the_documented_rule(pair, target, min_evidence):
    successes, n = pair
    verdict = evidence_for_level(successes, n, target_accuracy=target, min_evidence=min_evidence)
    expected = n >= min_evidence and binomial_lower_bound(successes, n) >= target
    assert verdict.sufficient is expected


def test_step_down_when_upper_bound_is_below_target():
    verdict = step_down_check(170, 200, target_accuracy=0.95)
    assert verdict.step_down
    assert verdict.upper_bound == pytest.approx(binomial_upper_bound(170, 200), abs=EXACT)
    assert verdict.reason == (
        "accuracy upper bound 89.0% is below the target 95.0% on the last 200 audited cases "
        "(95% confidence)"
    )


def test_no_step_down_when_accuracy_is_consistent_with_target():
    assert not step_down_check(188, 200, target_accuracy=0.95).step_down


def test_no_step_down_on_too_few_audits():
    verdict = step_down_check(0, 10, target_accuracy=0.95, min_samples=20)
    assert not verdict.step_down
    assert verdict.reason.startswith("only 10 audited cases in the window, 20 needed")


@given(counts, st.floats(min_value=0.0, max_value=1.0), st.integers(0, 100))
def test_step_down_is_exactly_the_documented_rule(pair, target, min_samples):
    successes, n = pair
    verdict = step_down_check(successes, n, target_accuracy=target, min_samples=min_samples)
    expected = n >= min_samples and binomial_upper_bound(successes, n) < target
    assert verdict.step_down is expected


@given(counts)
def test_step_down_is_monotone_in_successes(pair):
    successes, n = pair
    assume(successes < n)
    if step_down_check(successes + 1, n, target_accuracy=0.95).step_down:
        assert step_down_check(successes, n, target_accuracy=0.95).step_down


# ---------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------


def expand(table: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    """Two raters' label lists from a contingency table."""
    pairs = [pair for pair, count in table.items() for _ in range(count)]
    return [a for a, _ in pairs], [b for _, b in pairs]


@pytest.mark.parametrize(
    ("table", "kappa"),
    [
        # Wikipedia "Cohen's kappa", worked example: p_o = 0.7, p_e = 0.5
        ({("y", "y"): 20, ("y", "n"): 5, ("n", "y"): 10, ("n", "n"): 15}, 0.4),
        # Wikipedia, same agreement, different marginals: 0.06 / 0.46 and 0.14 / 0.54
        ({("y", "y"): 45, ("y", "n"): 15, ("n", "y"): 25, ("n", "n"): 15}, 0.06 / 0.46),
        ({("y", "y"): 25, ("y", "n"): 35, ("n", "y"): 5, ("n", "n"): 35}, 0.14 / 0.54),
    ],
)
def test_cohen_kappa_matches_worked_examples(table, kappa):
    a, b = expand(table)
    assert cohen_kappa(a, b) == pytest.approx(kappa, abs=EXACT)


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abcd")), min_size=1, max_size=60)
)
@settings(max_examples=200, deadline=None)
def test_kappa_from_counted_pairs_equals_kappa_of_the_items(items):
    pairs = Counter(items)
    a, b = [first for first, _ in items], [second for _, second in items]
    assert cohen_kappa_from_pairs(pairs) == pytest.approx(cohen_kappa(a, b), abs=EXACT)


def test_kappa_from_counted_pairs_edge_cases():
    assert cohen_kappa_from_pairs({("ok", "ok"): 5}) == 1.0
    assert cohen_kappa_from_pairs({("a", "b"): 1, ("b", "a"): 1, ("c", "c"): 0}) == -1.0
    with pytest.raises(ValueError, match="at least one item"):
        cohen_kappa_from_pairs({})
    with pytest.raises(ValueError, match="negative"):
        cohen_kappa_from_pairs({("a", "a"): 2, ("a", "b"): -1})


def test_cohen_kappa_edge_cases():
    assert cohen_kappa(["ok"] * 5, ["ok"] * 5) == 1.0
    assert cohen_kappa(["ok"] * 5, ["crack"] * 5) == 0.0
    assert cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert cohen_kappa(["a", "b"], ["b", "a"]) == -1.0
    with pytest.raises(ValueError):
        cohen_kappa([], [])
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def fleiss_items() -> list[list[str]]:
    return [[f"c{j}" for j, count in enumerate(row) for _ in range(count)] for row in FLEISS_TABLE]


def test_fleiss_kappa_matches_wikipedia_example():
    # P-bar = 0.378, P_e = 0.213, kappa = 0.210 (Wikipedia, rounded)
    assert fleiss_kappa(fleiss_items()) == pytest.approx(0.20993, abs=5e-5)


def test_fleiss_kappa_with_two_raters_is_scotts_pi():
    a, b = expand({("y", "y"): 20, ("y", "n"): 5, ("n", "y"): 10, ("n", "n"): 15})
    # Scott's pi: p_o = 0.7, pooled shares y = 55/100, n = 45/100
    expected = (0.7 - (0.55**2 + 0.45**2)) / (1 - (0.55**2 + 0.45**2))
    assert fleiss_kappa(list(zip(a, b, strict=True))) == pytest.approx(expected, abs=EXACT)


def test_fleiss_kappa_edge_cases():
    assert fleiss_kappa([["ok", "ok", "ok"]] * 4) == 1.0
    for bad in ([], [["a"]], [["a", "b"], ["a", "b", "c"]]):
        with pytest.raises(ValueError):
            fleiss_kappa(bad)


def test_percent_agreement():
    assert percent_agreement([["a", "a"], ["a", "b"], ["b", "b"], ["c", "a"]]) == 0.5
    assert percent_agreement([["a", "a", "b"]]) == pytest.approx(1 / 3)
    assert percent_agreement([["a", "a", "a"], ["x", "y"]]) == pytest.approx(0.5)
    items = fleiss_items()
    assert percent_agreement(items) == pytest.approx(0.37802, abs=5e-5)
    for bad in ([], [["a"]]):
        with pytest.raises(ValueError):
            percent_agreement(bad)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1))
def test_cohen_kappa_is_symmetric_and_bounded(pairs):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    kappa = cohen_kappa(a, b)
    assert kappa == pytest.approx(cohen_kappa(b, a), abs=EXACT)
    assert -1.0 - EXACT <= kappa <= 1.0 + EXACT
    assert not math.isnan(kappa)


# ---------------------------------------------------------------------------
# McNemar
# ---------------------------------------------------------------------------


def paired(b: int, c: int, both_right: int = 0, both_wrong: int = 0):
    a_correct = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    b_correct = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    return a_correct, b_correct


def test_mcnemar_exact_against_hand_computed_binomial():
    # 2 * P(X <= 2 | 12, 1/2) = 2 * (1 + 12 + 66) / 4096
    result = mcnemar_exact(*paired(10, 2, both_right=50, both_wrong=7))
    assert result == McNemarResult(b=10, c=2, p_value=pytest.approx(158 / 4096), better="a")
    assert mcnemar_exact(*paired(2, 10)).better == "b"


def test_mcnemar_not_significant_cases():
    assert mcnemar_exact(*paired(5, 5)) == McNemarResult(5, 5, pytest.approx(1.0), None)
    assert mcnemar_exact(*paired(0, 0, both_right=9)) == McNemarResult(0, 0, 1.0, None)
    assert mcnemar_exact(*paired(10, 2), alpha=0.01).better is None
    assert mcnemar_exact([], []).p_value == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


# ---------------------------------------------------------------------------
# Per-class metrics, confusion matrix, reliability
# ---------------------------------------------------------------------------

Y_TRUE = ["ok", "ok", "ok", "crack", "crack", "dent"]
Y_PRED = ["ok", "ok", "crack", "crack", "ok", "ok"]
LABELS = ["ok", "crack", "dent"]


def test_confusion_matrix_rows_are_truth_columns_are_predictions():
    assert confusion_matrix(Y_TRUE, Y_PRED, LABELS) == [[2, 1, 0], [1, 1, 0], [1, 0, 0]]
    assert confusion_matrix([], [], LABELS) == [[0] * 3] * 3


def test_per_class_metrics_by_hand():
    assert per_class_metrics(Y_TRUE, Y_PRED, LABELS) == [
        ClassMetrics("ok", precision=0.5, recall=pytest.approx(2 / 3), support=3),
        ClassMetrics("crack", precision=0.5, recall=0.5, support=2),
        ClassMetrics("dent", precision=0.0, recall=0.0, support=1),
    ]


def test_metrics_reject_unknown_or_duplicate_labels():
    with pytest.raises(ValueError, match="scratch"):
        confusion_matrix(["ok"], ["scratch"], LABELS)
    with pytest.raises(ValueError):
        per_class_metrics(["ok"], ["ok"], ["ok", "ok"])
    with pytest.raises(ValueError):
        confusion_matrix(["ok"], [], LABELS)


@given(st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS))))
def test_confusion_matrix_agrees_with_counting(pairs):
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    matrix = confusion_matrix(y_true, y_pred, LABELS)
    tally = Counter(pairs)
    assert matrix == [[tally[(t, p)] for p in LABELS] for t in LABELS]
    metrics = per_class_metrics(y_true, y_pred, LABELS)
    assert [m.support for m in metrics] == [y_true.count(label) for label in LABELS]


def test_reliability_bins_edges_and_contents():
    bins = reliability_bins([0.0, 0.3, 0.35, 0.7, 1.0], [True, True, False, False, True], 10)
    assert len(bins) == 10
    assert bins[0] == ReliabilityBin(0.0, 0.1, 0.0, 1.0, 1)
    assert bins[3] == ReliabilityBin(0.3, 0.4, pytest.approx(0.325), 0.5, 2)
    assert bins[7] == ReliabilityBin(0.7, 0.8, 0.7, 0.0, 1)
    assert bins[9] == ReliabilityBin(0.9, 1.0, 1.0, 1.0, 1)
    assert bins[5] == ReliabilityBin(0.5, 0.6, 0.0, 0.0, 0)


def test_expected_calibration_error_by_hand():
    # bin [0.3, 0.4): 2 cases, |0.5 - 0.325|; bin [0.7, 0.8): 1 case, |0 - 0.7|
    confidences = [0.3, 0.35, 0.7, 1.0]
    correct = [True, False, False, True]
    expected = (2 * 0.175 + 1 * 0.7 + 0) / 4
    assert expected_calibration_error(confidences, correct) == pytest.approx(expected)
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == 0.0
