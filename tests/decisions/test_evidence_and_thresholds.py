"""The gate's judgement of the evidence and the threshold report: pure, checked on numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from decisions.gate import EvidenceJudgement, evidence_judge
from decisions.routing import Level
from decisions.stats import evidence_for_level
from decisions.thresholds import CURVE_GRID, ScoredLabel, threshold_report

TARGETS = {"target_accuracy": 0.9, "min_evidence": 100, "confidence": 0.95}


def judge(successes: int, n: int, **kwargs: object) -> EvidenceJudgement:
    arguments: dict = {
        "level": Level.PARTIAL,
        "model_version": "cnn:v1",
        "since": None,
        **TARGETS,
        **kwargs,
    }
    return evidence_judge(successes=successes, n=n, **arguments)


class TestEvidenceJudge:
    def test_no_serving_version_is_said_plainly(self) -> None:
        found = judge(0, 0, model_version=None)
        assert found.sufficient is False
        assert found.reason == "no serving model is deployed"
        assert (found.lower_bound, found.labels_needed) == (0.0, None)
        assert (found.target_accuracy, found.min_evidence) == (0.9, 100)

    @pytest.mark.parametrize(
        ("successes", "n"), [(200, 200), (195, 200), (40, 40), (90, 100), (0, 0)]
    )
    @pytest.mark.parametrize("level", [Level.PARTIAL, Level.FULL])
    def test_the_verdict_is_the_statistics_verdict(
        self, successes: int, n: int, level: Level
    ) -> None:
        found = judge(successes, n, level=level)
        expected = evidence_for_level(successes, n, **TARGETS)
        assert found.sufficient is expected.sufficient
        assert found.lower_bound == expected.lower_bound
        assert found.reason.startswith(expected.reason + "; counted: shadow and assistance")
        counted = "audits at full automation" if level is Level.FULL else "audits of automated"
        assert counted in found.reason and "of cnn:v1" in found.reason

    def test_labels_needed_at_the_accuracy_seen(self) -> None:
        found = judge(40, 40)
        assert found.sufficient is False and found.labels_needed == 100
        assert found.reason.endswith("about 60 more labels would do")

    def test_nothing_seen_estimates_nothing(self) -> None:
        assert judge(0, 0).labels_needed is None

    def test_after_a_step_down_only_fresh_evidence_counts(self) -> None:
        found = judge(200, 200, since=datetime(2026, 3, 4, 5, 6, tzinfo=UTC))
        assert "after the automatic step down of 2026-03-04 05:06 UTC" in found.reason
        assert "(fresh evidence only)" in found.reason


class TestThresholdReport:
    def test_no_labels_no_threshold_and_an_empty_curve(self) -> None:
        report = threshold_report(
            [], labels=["ok", "bad"], current_threshold=0.9, target_error=0.05, confidence=0.95
        )
        assert report.n_labelled == 0 and report.recommendation.threshold is None
        assert len(report.curve) == len(CURVE_GRID)
        assert report.current is not None and report.current.threshold == pytest.approx(0.9)
        assert [(h.label, h.n, h.expected_share) for h in report.per_class] == [
            ("ok", 0, 0.0),
            ("bad", 0, 0.0),
        ]

    def test_the_threshold_in_force_is_on_the_curve_even_off_the_grid(self) -> None:
        scored = [ScoredLabel("ok", 0.5 + i / 2000, True) for i in range(1000)]
        report = threshold_report(
            scored, labels=["ok"], current_threshold=0.9051, target_error=0.05, confidence=0.95
        )
        assert len(report.curve) == len(CURVE_GRID) + 1
        assert report.current is not None and report.current.threshold == 0.9051
        assert [p.threshold for p in report.curve] == sorted(
            (p.threshold for p in report.curve), reverse=True
        )

    def test_per_class_hints_share_all_labelled_cases(self) -> None:
        scored = [ScoredLabel("ok", 0.99, True)] * 600 + [ScoredLabel("bad", 0.6, False)] * 400
        report = threshold_report(
            scored, labels=["ok", "bad"], current_threshold=0.9, target_error=0.05, confidence=0.95
        )
        ok, bad = report.per_class
        assert (ok.n, bad.n) == (600, 400)
        assert ok.threshold is not None and ok.expected_share == pytest.approx(0.6)
        assert bad.threshold is None and bad.expected_share == 0.0
        assert report.recommendation.threshold is not None
        assert report.recommendation.expected_automation_rate == pytest.approx(0.6)


def test_with_class_rules_the_recommendation_passes_the_partial_gate() -> None:
    """Per-class rules in force: the labels that follow the global threshold are judged
    against their own calibration, so the recommended global threshold is the highest of
    theirs, and the partial gate accepts a policy at it."""
    import random

    from decisions.gate import GatePolicy, partial_judge
    from decisions.thresholds import calibrate_by_class

    rng = random.Random(3)
    scored = []
    for label, accuracy in (("ok", 0.995), ("scratch", 0.97), ("crack", 0.7)):
        for _ in range(600):
            confidence = rng.random()
            right = rng.random() >= 2 * (1 - accuracy) * (1 - confidence)
            scored.append(ScoredLabel(label, confidence, right))
    labels = ["ok", "scratch", "crack"]
    rules = {"crack": None, "ok": 0.99}
    report = threshold_report(
        scored,
        labels=labels,
        current_threshold=0.9,
        target_error=0.05,
        confidence=0.95,
        class_rules=rules,
    )
    by_class = calibrate_by_class(scored, labels=labels, target_error=0.05, confidence=0.95)
    # Only "scratch" follows the global threshold: "ok" has its own, "crack" is never.
    assert by_class.thresholds["scratch"] is not None
    assert report.recommendation.threshold == by_class.thresholds["scratch"]
    policy = GatePolicy(
        level=Level.PARTIAL,
        confidence_threshold=report.recommendation.threshold,
        class_thresholds=rules,
        audit_rate=0.1,
        target_accuracy=0.9,
        min_evidence=200,
        target_error=0.05,
    )
    judged = partial_judge(
        scored=scored,
        policy=policy,
        labels=labels,
        model_version="m:v1",
        since=None,
        target_error=0.05,
        min_evidence=200,
        confidence=0.95,
    )
    assert judged.sufficient, judged.reason
