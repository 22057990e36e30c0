"""Pure statistics behind Loopgate's automation levels.

Everything here is a pure function of plain Python values (standard library,
numpy and scipy only): no Django, no settings, no clock. Results are frozen
dataclasses, so the caller can store or log them as evidence.

What the functions guarantee, and under which assumption:

* The labelled cases handed in are an unbiased sample of the cases the result
  will be applied to (independent, identically distributed). That is why the
  platform sends a *random* audit sample of model-decided cases to humans.
* All binomial bounds are exact (Clopper-Pearson, from the beta distribution),
  never a normal approximation: a nominal 95% bound holds with at least 95%
  probability for every n and every true rate, small n included.
* ``calibrate_threshold`` controls the error among auto-decided cases with
  Learn-then-Test (Angelopoulos et al. 2021) and fixed-sequence testing, so the
  guarantee survives choosing the threshold among many candidates.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

DEFAULT_THRESHOLD_GRID: tuple[float, ...] = tuple(k / 100 for k in range(101))
"""Thresholds 0.00, 0.01, ..., 1.00 added to the observed confidences in curves."""


# ---------------------------------------------------------------------------
# Validation and formatting helpers
# ---------------------------------------------------------------------------


def _check_level(value: float, name: str = "confidence") -> float:
    """Return ``value`` as a float, or raise if it is not strictly in (0, 1)."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def _check_rate(value: float, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not in [0, 1]."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return value


def _check_counts(successes: int, n: int) -> tuple[int, int]:
    """Return the counts as ints, or raise unless ``0 <= successes <= n``."""
    successes, n = int(successes), int(n)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    return successes, n


def _check_minimum(value: int, name: str, smallest: int) -> int:
    """Return ``value`` as an int, or raise if it is below ``smallest``."""
    value = int(value)
    if value < smallest:
        raise ValueError(f"{name} must be at least {smallest}, got {value}")
    return value


def _scored_cases(
    confidences: Sequence[float], correct: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Return (confidences, correct) as numpy arrays after checking them.

    Confidences must be finite and within [0, 1]; both sequences must have the
    same length.
    """
    scores = np.asarray(confidences, dtype=float).reshape(-1)
    outcomes = np.asarray(correct, dtype=bool).reshape(-1)
    if scores.shape != outcomes.shape:
        raise ValueError(
            f"confidences and correct differ in length ({scores.size} vs {outcomes.size})"
        )
    if scores.size and not (
        np.all(np.isfinite(scores)) and scores.min() >= 0.0 and scores.max() <= 1.0
    ):
        raise ValueError("confidences must be finite numbers between 0 and 1")
    return scores, outcomes


def _same_length(first: Sequence[object], second: Sequence[object], what: str) -> None:
    """Raise unless both sequences have the same length."""
    if len(first) != len(second):
        raise ValueError(f"{what} differ in length ({len(first)} vs {len(second)})")


def _percent(value: float, decimals: int = 1) -> str:
    """Format a rate in [0, 1] as a percentage: 0.9123 -> '91.2%'."""
    return f"{100.0 * value:.{decimals}f}%"


def _level(confidence: float) -> str:
    """Format a confidence level: 0.95 -> '95%', 0.975 -> '97.5%'."""
    return f"{100.0 * confidence:.4g}%"


def _percent_pair(value: float, reference: float) -> tuple[str, str]:
    """Format two rates with enough decimals that unequal values never print equal."""
    for decimals in (1, 2, 3, 4):
        shown = (_percent(value, decimals), _percent(reference, decimals))
        if value == reference or shown[0] != shown[1]:
            return shown
    return _percent(value, 6), _percent(reference, 6)


# ---------------------------------------------------------------------------
# Exact binomial bounds
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval for a binomial proportion.

    ``estimate`` is successes / n; with ``n == 0`` nothing is known, which is
    encoded as estimate 0.0 and the vacuous interval [0.0, 1.0] (never NaN).
    """

    estimate: float
    low: float
    high: float
    successes: int
    n: int
    confidence: float


def _exact_lower_bounds(successes: npt.ArrayLike, n: npt.ArrayLike, tail: float) -> np.ndarray:
    """Exact lower bounds p with P(X >= successes | n, p) = tail (0 where successes=0)."""
    k = np.asarray(successes, dtype=float)
    trials = np.asarray(n, dtype=float)
    defined = k > 0
    bound = sps.beta.ppf(tail, np.where(defined, k, 1.0), np.where(defined, trials - k + 1.0, 1.0))
    return np.where(defined, bound, 0.0)


def _exact_upper_bounds(successes: npt.ArrayLike, n: npt.ArrayLike, tail: float) -> np.ndarray:
    """Exact upper bounds p with P(X <= successes | n, p) = tail (1 where successes=n)."""
    k = np.asarray(successes, dtype=float)
    trials = np.asarray(n, dtype=float)
    defined = k < trials
    bound = sps.beta.isf(tail, np.where(defined, k + 1.0, 1.0), np.where(defined, trials - k, 1.0))
    return np.where(defined, bound, 1.0)


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Exact two-sided Clopper-Pearson interval for a binomial proportion.

    Guarantee: for every true proportion p and every n, the interval covers p
    with probability at least ``confidence`` (it is conservative, never
    anti-conservative). Each side gets (1 - confidence) / 2 of the error.
    """
    successes, n = _check_counts(successes, n)
    confidence = _check_level(confidence)
    if n == 0:
        return Interval(0.0, 0.0, 1.0, 0, 0, confidence)
    tail = (1.0 - confidence) / 2.0
    low = float(_exact_lower_bounds(successes, n, tail))
    high = float(_exact_upper_bounds(successes, n, tail))
    return Interval(successes / n, low, high, successes, n, confidence)


def binomial_lower_bound(successes: int, n: int, confidence: float = 0.95) -> float:
    """Exact one-sided lower confidence bound for a binomial proportion.

    Guarantee: P(true p >= bound) >= ``confidence`` for every p and n. It is
    the lower end of a two-sided Clopper-Pearson interval at level
    2 * confidence - 1, hence tighter than the two-sided bound at the same
    level. Returns 0.0 when n == 0 or successes == 0.
    """
    successes, n = _check_counts(successes, n)
    confidence = _check_level(confidence)
    if n == 0:
        return 0.0
    return float(_exact_lower_bounds(successes, n, 1.0 - confidence))


def binomial_upper_bound(successes: int, n: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper confidence bound for a binomial proportion.

    Guarantee: P(true p <= bound) >= ``confidence`` for every p and n.
    Returns 1.0 when n == 0 or successes == n.
    """
    successes, n = _check_counts(successes, n)
    confidence = _check_level(confidence)
    if n == 0:
        return 1.0
    return float(_exact_upper_bounds(successes, n, 1.0 - confidence))


# ---------------------------------------------------------------------------
# Risk-coverage curve and threshold calibration
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    """What auto-deciding every case with confidence >= ``threshold`` would do.

    ``automation_rate`` is the share of all labelled cases that would be
    auto-decided (``n_auto`` of them); ``error_rate`` the share of those the
    model got wrong (0.0 when none are auto-decided) and ``error_upper_bound``
    its exact one-sided upper bound (1.0 when none are auto-decided).
    """

    threshold: float
    automation_rate: float
    n_auto: int
    errors: int
    error_rate: float
    error_upper_bound: float


def _auto_decided_counts(
    scores: np.ndarray, outcomes: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each threshold: how many cases have confidence >= it, and how many are wrong.

    A confidence exactly equal to the threshold counts as auto-decided.
    """
    order = np.argsort(scores, kind="stable")
    ascending = scores[order]
    errors_so_far = np.concatenate(([0], np.cumsum(~outcomes[order])))
    first_auto = np.searchsorted(ascending, thresholds, side="left")
    n_auto = scores.size - first_auto
    errors = errors_so_far[-1] - errors_so_far[first_auto]
    return n_auto.astype(int), errors.astype(int)


def _default_thresholds(scores: np.ndarray) -> np.ndarray:
    """Distinct observed confidences plus the 0.01 grid, sorted descending."""
    candidates = np.union1d(scores, np.asarray(DEFAULT_THRESHOLD_GRID))
    return candidates[::-1]


def risk_coverage_curve(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    confidence: float = 0.95,
    thresholds: Sequence[float] | None = None,
) -> list[CurvePoint]:
    """Automation rate and error rate among auto-decided cases, per threshold.

    For each candidate threshold t the cases with confidence >= t are the ones
    the model would decide alone. By default the candidates are the distinct
    observed confidences together with 0.00, 0.01, ..., 1.00, sorted from the
    highest to the lowest; given ``thresholds`` are used in the order given.

    The upper bounds are exact per threshold, but they are *not* simultaneous:
    reading the lowest threshold whose bound is below a target off this curve
    does not carry the guarantee. Use ``calibrate_threshold`` for that.
    """
    scores, outcomes = _scored_cases(confidences, correct)
    confidence = _check_level(confidence)
    if thresholds is None:
        candidates = _default_thresholds(scores)
    else:
        candidates = np.asarray(thresholds, dtype=float).reshape(-1)
    n_auto, errors = _auto_decided_counts(scores, outcomes, candidates)
    upper = _exact_upper_bounds(errors, n_auto, 1.0 - confidence)
    total = scores.size
    return [
        CurvePoint(
            threshold=float(threshold),
            automation_rate=count / total if total else 0.0,
            n_auto=count,
            errors=wrong,
            error_rate=wrong / count if count else 0.0,
            error_upper_bound=float(bound),
        )
        for threshold, count, wrong, bound in zip(
            candidates.tolist(), n_auto.tolist(), errors.tolist(), upper.tolist(), strict=True
        )
    ]


@dataclass(frozen=True)
class ThresholdRecommendation:
    """The calibrated confidence threshold for partial automation, or None.

    ``expected_automation_rate``, ``error_rate`` and ``error_upper_bound``
    describe the labelled cases at the recommended threshold; with no
    threshold they are 0.0, 0.0 and 1.0. ``reason`` says why, in words.
    """

    threshold: float | None
    expected_automation_rate: float
    error_rate: float
    error_upper_bound: float
    n_labelled: int
    target_error: float
    confidence: float
    reason: str


def labels_needed_without_errors(target_error: float, confidence: float = 0.95) -> int:
    """Fewest auto-decided cases that can prove error < target_error, if none is wrong.

    With zero errors in n cases the exact p-value for "error >= target" is
    (1 - target)^n; this returns the smallest n with (1 - target)^n < 1 - confidence
    (e.g. 299 for a 1% target at 95% confidence, 59 for 5%).
    """
    target_error = _check_level(target_error, "target_error")
    delta = 1.0 - _check_level(confidence)
    return math.floor(math.log(delta) / math.log1p(-target_error)) + 1


FIRST_TEST_FACTOR = 2
"""The first tested threshold auto-decides at least this many times
``labels_needed_without_errors`` labelled cases (see ``calibrate_threshold``)."""


def first_tested_size(target_error: float, confidence: float = 0.95, min_auto: int = 1) -> int:
    """How many labelled cases the first (highest) tested threshold must auto-decide.

    ``max(min_auto, FIRST_TEST_FACTOR * labels_needed_without_errors(...))``: a
    threshold with fewer cases could only pass with a (nearly) perfect record,
    so one unlucky error there would end the fixed-sequence scan before it
    reaches the thresholds worth having.
    """
    needed = labels_needed_without_errors(target_error, confidence)
    return max(_check_minimum(min_auto, "min_auto", 1), FIRST_TEST_FACTOR * needed)


def _fixed_sequence_stop(p_values: np.ndarray, delta: float) -> int:
    """How many leading hypotheses fixed-sequence testing rejects at level delta."""
    not_rejected = np.flatnonzero(p_values >= delta)
    return int(not_rejected[0]) if not_rejected.size else int(p_values.size)


def calibrate_threshold(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    target_error: float,
    confidence: float = 0.95,
    min_auto: int = 1,
) -> ThresholdRecommendation:
    """Lowest confidence threshold whose auto-decided error is provably below target.

    Method (Learn-then-Test, Angelopoulos et al. 2021, with fixed-sequence
    testing): for a threshold t, H0(t) says "the error rate among cases with
    confidence >= t is >= target_error", and its exact binomial p-value is
    P(Binomial(n_auto, target_error) <= errors) (no normal approximation).
    The candidate thresholds are the distinct observed confidences; they are
    tested from the highest to the lowest, and the scan stops at the first one
    whose p-value is not below delta = 1 - confidence. The recommendation is
    the last (lowest) threshold rejected before the stop; a confidence exactly
    equal to it counts as auto-decided.

    Guarantee: with probability at least ``confidence`` over the draw of the
    labelled cases, the true error rate among future cases with confidence >=
    the recommended threshold is below ``target_error``. Choosing among many
    thresholds does not erode this, because fixed-sequence testing controls
    the family-wise error: the p-value only changes at observed confidences,
    so the scan is the same as testing every threshold in [0, 1] in a fixed,
    descending order, and passing any threshold whose true error is >= target
    requires first rejecting the highest such threshold, a single valid test
    that wrongly rejects with probability at most delta.

    Assumptions: the labelled cases and future cases are i.i.d. (an unbiased
    sample, such as the random audit sample). The scan starts at the highest
    threshold that auto-decides at least ``first_tested_size(target_error,
    confidence, min_auto)`` labelled cases, because higher thresholds could
    only pass with a perfect record. The start is chosen from the confidences
    alone, never from the correctness labels, and is conservative when errors
    are no more likely at higher confidence; the seeded simulations in
    tests/automation/test_stats_simulation.py check the promised rate.

    ``expected_automation_rate`` is the share of labelled cases at or above
    the threshold: a point estimate of the automation rate, not a bound.
    """
    scores, outcomes = _scored_cases(confidences, correct)
    confidence = _check_level(confidence)
    target_error = _check_level(target_error, "target_error")
    start_size = first_tested_size(target_error, confidence, min_auto)
    delta = 1.0 - confidence

    candidates = np.unique(scores)[::-1]
    n_auto, errors = _auto_decided_counts(scores, outcomes, candidates)
    tested = n_auto >= start_size
    candidates, n_auto, errors = candidates[tested], n_auto[tested], errors[tested]
    p_values = sps.binom.cdf(errors, n_auto, target_error)
    n_rejected = _fixed_sequence_stop(p_values, delta)

    if n_rejected == 0:
        scan = _ScanStart(start_size, candidates[:1], n_auto[:1], errors[:1])
        return _no_threshold(scores.size, scan, target_error, confidence)
    chosen = n_rejected - 1
    count, wrong = int(n_auto[chosen]), int(errors[chosen])
    upper = float(_exact_upper_bounds(wrong, count, delta))
    threshold = float(candidates[chosen])
    automation_rate = count / scores.size
    shown_upper, shown_target = _percent_pair(upper, target_error)
    reason = (
        f"threshold {threshold:.6g} auto-decides {_percent(automation_rate)} of "
        f"{scores.size} labelled cases with error {_percent(wrong / count, 2)} "
        f"({wrong} of {count}); the error upper bound {shown_upper} is below the target "
        f"{shown_target} with {_level(confidence)} confidence"
    )
    return ThresholdRecommendation(
        threshold=threshold,
        expected_automation_rate=automation_rate,
        error_rate=wrong / count,
        error_upper_bound=upper,
        n_labelled=int(scores.size),
        target_error=target_error,
        confidence=confidence,
        reason=reason,
    )


@dataclass(frozen=True)
class _ScanStart:
    """The first tested threshold of a calibration scan (empty arrays: none)."""

    size: int
    threshold: np.ndarray
    n_auto: np.ndarray
    errors: np.ndarray


def _no_threshold(
    n_labelled: int, scan: _ScanStart, target_error: float, confidence: float
) -> ThresholdRecommendation:
    """The recommendation when no threshold passes, with the reason in words."""
    head = (
        f"no threshold keeps the error below {_percent(target_error)} with "
        f"{_level(confidence)} confidence on {n_labelled} labelled cases"
    )
    if scan.threshold.size == 0:
        reason = (
            f"{head}; need more labels (the highest tested threshold must auto-decide "
            f"at least {scan.size} labelled cases)"
        )
    else:
        count, wrong = int(scan.n_auto[0]), int(scan.errors[0])
        upper = float(_exact_upper_bounds(wrong, count, 1.0 - confidence))
        reason = (
            f"{head}; at the highest tested threshold {float(scan.threshold[0]):.6g} the "
            f"model made {wrong} errors in {count} cases (error upper bound "
            f"{_percent(upper)}); more labels or a better model are needed"
        )
    return ThresholdRecommendation(
        threshold=None,
        expected_automation_rate=0.0,
        error_rate=0.0,
        error_upper_bound=1.0,
        n_labelled=n_labelled,
        target_error=target_error,
        confidence=confidence,
        reason=reason,
    )


# ---------------------------------------------------------------------------
# Evidence for moving up a level, and the automatic step down
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceVerdict:
    """Whether the human-labelled evidence supports an automation level."""

    sufficient: bool
    n: int
    accuracy: Interval
    lower_bound: float
    target_accuracy: float
    min_evidence: int
    reason: str


def evidence_for_level(
    successes: int,
    n: int,
    *,
    target_accuracy: float,
    min_evidence: int,
    confidence: float = 0.95,
) -> EvidenceVerdict:
    """Decide whether ``successes`` correct out of ``n`` labelled cases earn a level.

    Sufficient iff ``n >= min_evidence`` and the exact one-sided lower bound of
    the accuracy at ``confidence`` is >= ``target_accuracy``. Guarantee: a
    model whose true accuracy is below the target is found sufficient with
    probability at most 1 - confidence (per check). ``accuracy`` is the
    two-sided interval at the same level, for display.
    """
    successes, n = _check_counts(successes, n)
    target_accuracy = _check_rate(target_accuracy, "target_accuracy")
    min_evidence = _check_minimum(min_evidence, "min_evidence", 0)
    confidence = _check_level(confidence)
    accuracy = clopper_pearson(successes, n, confidence)
    lower = binomial_lower_bound(successes, n, confidence)
    enough_cases = n >= min_evidence
    meets_target = lower >= target_accuracy
    shown_lower, shown_target = _percent_pair(lower, target_accuracy)
    context = f"(n={n}, {_level(confidence)} confidence)"
    problems = []
    if not enough_cases:
        problems.append(f"only {n} human-labelled cases, {min_evidence} needed")
    if not meets_target:
        problems.append(
            f"accuracy lower bound {shown_lower} is below the target {shown_target} {context}"
        )
    if problems:
        reason = "; ".join(problems)
    else:
        reason = f"accuracy lower bound {shown_lower} meets the target {shown_target} {context}"
    return EvidenceVerdict(
        sufficient=not problems,
        n=n,
        accuracy=accuracy,
        lower_bound=lower,
        target_accuracy=target_accuracy,
        min_evidence=min_evidence,
        reason=reason,
    )


@dataclass(frozen=True)
class StepDownVerdict:
    """Whether the audited accuracy of a recent window demands a lower level."""

    step_down: bool
    n: int
    upper_bound: float
    target_accuracy: float
    reason: str
    quantity: str = "accuracy"


def step_down_check(
    successes: int,
    n: int,
    *,
    target_accuracy: float,
    confidence: float = 0.95,
    min_samples: int = 20,
) -> StepDownVerdict:
    """Decide whether the recent audited accuracy is provably below the target.

    Step down iff ``n >= min_samples`` and the exact one-sided UPPER bound of
    the accuracy at ``confidence`` is below ``target_accuracy``: the data
    show, not merely suggest, that the model misses the target. Guarantee per
    check: a model that truly meets the target is stepped down with
    probability at most 1 - confidence.

    Window and hysteresis: the caller passes the counts of a recent window of
    audited cases (e.g. the last 200 audits), so old good results cannot mask
    a fresh drop. Because the check runs again after every audit, false
    step-downs over a long stream add up beyond 1 - confidence per check.
    Measured by bench/simulate_guarantees.py for target 0.95, window 200 and a
    stable model at 0.97: one false step-down per ~67,000 audits at 95%
    confidence (~1.3 million at 99%), while a drop to 0.87 is caught after a
    median of 95 audits (125 at 99%), p99 about 200 (about 280). Stepping down is
    one-way: going back up needs fresh evidence that passes
    ``evidence_for_level`` (a lower bound above the target), so a model
    hovering near the target does not flap between levels.
    """
    successes, n = _check_counts(successes, n)
    target_accuracy = _check_rate(target_accuracy, "target_accuracy")
    confidence = _check_level(confidence)
    min_samples = _check_minimum(min_samples, "min_samples", 0)
    upper = binomial_upper_bound(successes, n, confidence)
    shown_upper, shown_target = _percent_pair(upper, target_accuracy)
    if n < min_samples:
        return StepDownVerdict(
            False,
            n,
            upper,
            target_accuracy,
            f"only {n} audited cases in the window, {min_samples} needed to judge a step down",
        )
    context = f"on the last {n} audited cases ({_level(confidence)} confidence)"
    if upper < target_accuracy:
        reason = f"accuracy upper bound {shown_upper} is below the target {shown_target} {context}"
        return StepDownVerdict(True, n, upper, target_accuracy, reason)
    reason = f"accuracy upper bound {shown_upper} is not below the target {shown_target} {context}"
    return StepDownVerdict(False, n, upper, target_accuracy, reason)


def step_down_error_check(
    errors: int,
    n: int,
    *,
    target_error: float,
    confidence: float = 0.95,
    min_samples: int = 20,
) -> StepDownVerdict:
    """Whether the audited error of automatic decisions is provably above ``target_error``.

    The step down of ``partial``: its audits sample the auto-decided cases only, so they
    measure the error among them, the quantity its gate promised. Step down iff ``n >=
    min_samples`` and the exact one-sided LOWER bound of that error at ``confidence`` is
    above ``target_error`` (the same test as ``step_down_check`` on accuracy against
    ``1 - target_error``). ``upper_bound`` and ``target_accuracy`` are on the accuracy
    scale (1 - error), ``quantity`` is ``error``; the reason speaks of error.
    """
    errors, n = _check_counts(errors, n)
    target_error = _check_level(target_error, "target_error")
    verdict = step_down_check(
        n - errors,
        n,
        target_accuracy=1.0 - target_error,
        confidence=confidence,
        min_samples=min_samples,
    )
    lower_error = 1.0 - verdict.upper_bound
    shown_lower, shown_target = _percent_pair(lower_error, target_error)
    if n < _check_minimum(min_samples, "min_samples", 0):
        reason = verdict.reason
    else:
        context = (
            f"on the last {n} audited automatic decisions ({errors} wrong, "
            f"{_level(confidence)} confidence)"
        )
        relation = "is above" if verdict.step_down else "is not above"
        reason = f"error lower bound {shown_lower} {relation} the target {shown_target} {context}"
    return StepDownVerdict(
        verdict.step_down, n, verdict.upper_bound, 1.0 - target_error, reason, "error"
    )


def labels_needed_at_accuracy(
    accuracy: float,
    target_accuracy: float,
    *,
    confidence: float = 0.95,
    min_evidence: int = 0,
    max_n: int = 1_000_000,
) -> int | None:
    """Fewest labelled cases that would pass ``evidence_for_level`` at this accuracy.

    Assumes the observed ``accuracy`` holds as more labels arrive: the smallest n >=
    ``min_evidence`` with ``binomial_lower_bound(floor(accuracy * n), n) >= target``.
    None when no n up to ``max_n`` would do (an accuracy at or below the target never
    proves it). A planning figure for "what is missing", not a guarantee.
    """
    accuracy = _check_rate(accuracy, "accuracy")
    target_accuracy = _check_rate(target_accuracy, "target_accuracy")
    confidence = _check_level(confidence)
    min_evidence = _check_minimum(min_evidence, "min_evidence", 0)

    def passes(n: int) -> bool:
        return (
            n > 0
            and binomial_lower_bound(math.floor(accuracy * n + 1e-9), n, confidence)
            >= target_accuracy
        )

    if accuracy <= target_accuracy and target_accuracy > 0.0:
        return None
    low = max(min_evidence, 1)
    if passes(low):
        return low
    high = low
    while not passes(high):
        if high >= max_n:
            return None
        high = min(2 * high, max_n)
    # The floor makes passes() non-monotone by a few cases; bisection finds a passing n
    # close to the smallest one, and the walk down makes it the first of its run.
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if passes(middle) else (middle, high)
    while high - 1 >= max(min_evidence, 1) and passes(high - 1):
        high -= 1
    return high


@dataclass(frozen=True)
class DriftVerdict:
    """Two-sample Kolmogorov-Smirnov comparison of recent confidences with a reference."""

    drifted: bool
    statistic: float
    p_value: float
    n_reference: int
    n_recent: int
    reference_mean: float
    recent_mean: float
    reason: str


def confidence_drift(
    reference: Sequence[float],
    recent: Sequence[float],
    *,
    p_value: float = 0.001,
    min_samples: int = 100,
) -> DriftVerdict:
    """Whether the model's confidences moved away from the reference distribution.

    Drifted iff both samples hold at least ``min_samples`` values and the exact
    two-sample KS test rejects "same distribution" at ``p_value``. Guarantee per check:
    when nothing changed, a false alarm has probability at most ``p_value`` (the samples
    must be independent draws; cases are). Output drift is a warning sign, not proof of
    errors: accuracy is judged by ``step_down_check`` on audits.
    """
    p_value = _check_level(p_value, "p_value")
    min_samples = _check_minimum(min_samples, "min_samples", 1)
    before, _ = _scored_cases(reference, [True] * len(reference))
    after, _ = _scored_cases(recent, [True] * len(recent))
    means = (
        float(before.mean()) if before.size else 0.0,
        float(after.mean()) if after.size else 0.0,
    )
    if before.size < min_samples or after.size < min_samples:
        return DriftVerdict(
            False,
            0.0,
            1.0,
            int(before.size),
            int(after.size),
            *means,
            f"need {min_samples} confidences in both windows "
            f"(reference {before.size}, recent {after.size})",
        )
    result = sps.ks_2samp(before, after, method="auto")
    statistic, probability = float(result.statistic), float(result.pvalue)
    drifted = probability < p_value
    reason = (
        f"mean confidence {_percent(means[0])} -> {_percent(means[1])}, KS statistic "
        f"{statistic:.3f}, p = {probability:.2g} "
        f"({'below' if drifted else 'not below'} {p_value:g})"
    )
    return DriftVerdict(
        drifted, statistic, probability, int(before.size), int(after.size), *means, reason
    )


# ---------------------------------------------------------------------------
# Agreement between raters
# ---------------------------------------------------------------------------


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa between two raters who labelled the same items.

    kappa = (p_observed - p_chance) / (1 - p_chance), computed exactly from
    integer counts. Defined edge cases: two constant raters who agree get
    1.0 (the chance term would otherwise give 0/0). Empty input raises
    ValueError (there is no agreement to measure), as do unequal lengths.
    """
    _same_length(a, b, "the two raters' labels")
    if not a:
        raise ValueError("cohen_kappa needs at least one item")
    n = len(a)
    agreements = sum(1 for first, second in zip(a, b, strict=True) if first == second)
    counts_a, counts_b = Counter(a), Counter(b)
    chance_pairs = sum(count * counts_b[label] for label, count in counts_a.items())
    if chance_pairs == n * n:
        return 1.0
    return (n * agreements - chance_pairs) / (n * n - chance_pairs)


def cohen_kappa_from_pairs(pairs: Mapping[tuple[str, str], int]) -> float:
    """Cohen's kappa from counted label pairs: ``pairs[(a, b)]`` items got a from the first
    rater and b from the second.

    The same number as ``cohen_kappa`` on the items written out one by one (and the same
    edge cases), for callers that count pairs in the database instead of listing them.
    Negative counts raise ValueError.
    """
    if any(count < 0 for count in pairs.values()):
        raise ValueError("pair counts must not be negative")
    n = sum(pairs.values())
    if n == 0:
        raise ValueError("cohen_kappa_from_pairs needs at least one item")
    agreements = sum(count for (first, second), count in pairs.items() if first == second)
    counts_a: Counter[str] = Counter()
    counts_b: Counter[str] = Counter()
    for (first, second), count in pairs.items():
        counts_a[first] += count
        counts_b[second] += count
    chance_pairs = sum(count * counts_b[label] for label, count in counts_a.items())
    if chance_pairs == n * n:
        return 1.0
    return (n * agreements - chance_pairs) / (n * n - chance_pairs)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float:
    """Fleiss' kappa for items each rated by the same number (>= 2) of raters.

    ``ratings[i]`` holds the labels the raters gave item i (which rater gave
    which label does not matter). Raises ValueError for no items, fewer than
    two ratings per item or unequal numbers of ratings. When every rating of
    every item is the same label, agreement is perfect and 1.0 is returned
    (the chance term would otherwise give 0/0).
    """
    if not ratings:
        raise ValueError("fleiss_kappa needs at least one item")
    raters = len(ratings[0])
    if raters < 2 or any(len(item) != raters for item in ratings):
        raise ValueError("fleiss_kappa needs the same number (>= 2) of ratings for every item")
    per_item = [Counter(item) for item in ratings]
    totals: Counter[str] = Counter()
    for counts in per_item:
        totals.update(counts)
    if len(totals) == 1:
        return 1.0
    mean_agreement = float(np.mean([_pairwise_agreement(counts) for counts in per_item]))
    n_ratings = raters * len(ratings)
    chance = sum((count / n_ratings) ** 2 for count in totals.values())
    return (mean_agreement - chance) / (1.0 - chance)


def _pairwise_agreement(counts: Counter[str]) -> float:
    """Share of ordered pairs of distinct ratings of one item that agree."""
    raters = sum(counts.values())
    return sum(count * (count - 1) for count in counts.values()) / (raters * (raters - 1))


def percent_agreement(items: Sequence[Sequence[str]]) -> float:
    """Mean share of rater pairs that agree, over items (a rate in [0, 1]).

    For each item, the share of pairs of its ratings that carry the same
    label; then the mean over items. With two raters this is the share of
    items they agree on. Items may have different numbers of ratings, but
    each needs at least two; no items at all raises ValueError.
    """
    if not items:
        raise ValueError("percent_agreement needs at least one item")
    if any(len(item) < 2 for item in items):
        raise ValueError("percent_agreement needs at least two ratings for every item")
    return float(np.mean([_pairwise_agreement(Counter(item)) for item in items]))


# ---------------------------------------------------------------------------
# Comparing two models on the same cases
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired correctness.

    ``b``: cases model a got right and model b got wrong; ``c``: the reverse.
    ``better`` is "a" or "b" when the difference is significant, else None.
    """

    b: int
    c: int
    p_value: float
    better: str | None


def mcnemar_exact(
    a_correct: Sequence[bool], b_correct: Sequence[bool], *, alpha: float = 0.05
) -> McNemarResult:
    """Exact (binomial) two-sided McNemar test of two models on the same cases.

    Under H0 (equal accuracy) the discordant cases split as
    Binomial(b + c, 1/2); the p-value is the exact two-sided binomial p-value
    (1.0 when there are no discordant cases). Guarantee: for two equally
    accurate models, ``better`` is not None with probability at most alpha.
    """
    _same_length(a_correct, b_correct, "the two models' results")
    alpha = _check_level(alpha, "alpha")
    first = np.asarray(a_correct, dtype=bool).reshape(-1)
    second = np.asarray(b_correct, dtype=bool).reshape(-1)
    only_a = int(np.count_nonzero(first & ~second))
    only_b = int(np.count_nonzero(~first & second))
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else float(sps.binomtest(only_a, discordant).pvalue)
    better = None
    if p_value < alpha and only_a != only_b:
        better = "a" if only_a > only_b else "b"
    return McNemarResult(b=only_a, c=only_b, p_value=p_value, better=better)


# ---------------------------------------------------------------------------
# Per-class metrics and calibration of confidences
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMetrics:
    """Precision and recall of one label; 0.0 where the denominator is zero."""

    label: str
    precision: float
    recall: float
    support: int


def _label_positions(labels: Sequence[str]) -> dict[str, int]:
    """Map each label to its row/column, raising on duplicates."""
    positions = {label: index for index, label in enumerate(labels)}
    if len(positions) != len(labels):
        raise ValueError("labels must be distinct")
    return positions


def confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> list[list[int]]:
    """Counts ``matrix[i][j]`` of cases with true label ``labels[i]`` predicted ``labels[j]``.

    Every true and predicted label must be one of ``labels`` (ValueError
    otherwise: a silently dropped case would hide a bug).
    """
    _same_length(y_true, y_pred, "y_true and y_pred")
    positions = _label_positions(labels)
    unknown = sorted({*y_true, *y_pred} - positions.keys())
    if unknown:
        raise ValueError(f"labels not in the label set: {unknown}")
    matrix = [[0] * len(labels) for _ in labels]
    for truth, predicted in zip(y_true, y_pred, strict=True):
        matrix[positions[truth]][positions[predicted]] += 1
    return matrix


def per_class_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> list[ClassMetrics]:
    """Precision, recall and support per label, in the order of ``labels``.

    precision = right predictions of the label / predictions of the label;
    recall = right predictions of the label / true cases of the label
    (``support``). Both are 0.0 when their denominator is zero.
    """
    matrix = np.asarray(confusion_matrix(y_true, y_pred, labels), dtype=int).reshape(
        len(labels), len(labels)
    )
    right = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    return [
        ClassMetrics(
            label=label,
            precision=float(right[i] / predicted[i]) if predicted[i] else 0.0,
            recall=float(right[i] / support[i]) if support[i] else 0.0,
            support=int(support[i]),
        )
        for i, label in enumerate(labels)
    ]


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram: confidences in [low, high).

    The last bin also holds confidence 1.0. ``mean_confidence`` and
    ``accuracy`` are 0.0 when ``count`` is 0.
    """

    low: float
    high: float
    mean_confidence: float
    accuracy: float
    count: int


def reliability_bins(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] with mean confidence, accuracy and count.

    Always returns ``n_bins`` bins (empty ones with count 0), so the shape of
    a reliability diagram is stable. A confidence on an inner edge belongs to
    the bin that starts there.
    """
    scores, outcomes = _scored_cases(confidences, correct)
    n_bins = _check_minimum(n_bins, "n_bins", 1)
    edges = np.arange(n_bins + 1) / n_bins
    which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    confidence_sums = np.bincount(which, weights=scores, minlength=n_bins)
    right_sums = np.bincount(which, weights=outcomes.astype(float), minlength=n_bins)
    return [
        ReliabilityBin(
            low=float(edges[i]),
            high=float(edges[i + 1]),
            mean_confidence=float(confidence_sums[i] / counts[i]) if counts[i] else 0.0,
            accuracy=float(right_sums[i] / counts[i]) if counts[i] else 0.0,
            count=int(counts[i]),
        )
        for i in range(n_bins)
    ]


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> float:
    """Expected calibration error: sum over bins of share * |accuracy - mean confidence|.

    Uses the bins of ``reliability_bins``. Returns 0.0 for no cases. A point
    estimate in [0, 1]; it is biased upwards for small samples.
    """
    bins = reliability_bins(confidences, correct, n_bins)
    total = sum(item.count for item in bins)
    if total == 0:
        return 0.0
    return float(
        sum(item.count * abs(item.accuracy - item.mean_confidence) for item in bins) / total
    )
