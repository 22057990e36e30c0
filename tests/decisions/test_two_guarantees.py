"""Two guarantees, two gates: ``partial`` on the error among automatic decisions
(calibrated threshold), ``full`` on overall accuracy; the step down watches the same
quantity. Table tests of the pure rules (decisions.gate, decisions.thresholds,
decisions.stats), without Django."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from decisions.gate import (
    EvidenceCheck,
    Floors,
    GatePolicy,
    Refusal,
    Targets,
    evidence_judge,
    judge_change,
    partial_judge,
)
from decisions.routing import Level
from decisions.stats import first_tested_size, step_down_check, step_down_error_check
from decisions.thresholds import ScoredLabel, calibrate_by_class

FLOORS = Floors(audit_rate=0.01, min_evidence=50, target_accuracy=0.8, target_error=0.1)
LABELS = ["ok", "crack", "stain"]


def scored_sample(
    seed: int, n: int, *, accuracy_at: float = 1.5, labels: list[str] | None = None
) -> list[ScoredLabel]:
    """A model whose confidence c ~ Beta(12, 1) and is right with probability c**1.5."""
    rng = np.random.default_rng(seed)
    confidences = rng.beta(12.0, 1.0, size=n)
    correct = rng.random(n) < confidences**accuracy_at
    names = labels or LABELS
    predicted = rng.choice(names, size=n, p=[0.7, 0.2, 0.1][: len(names)] if not labels else None)
    return [
        ScoredLabel(str(p), float(c), bool(r))
        for p, c, r in zip(predicted, confidences, correct, strict=True)
    ]


def policy(**fields: object) -> GatePolicy:
    values: dict = {
        "level": Level.PARTIAL,
        "confidence_threshold": 0.9,
        "audit_rate": 0.05,
        "target_accuracy": 0.95,
        "min_evidence": 200,
        "target_error": 0.02,
    }
    values.update(fields)
    return GatePolicy(**values)


def judge_partial(scored: list[ScoredLabel], pol: GatePolicy, **kwargs: object):
    args: dict = {
        "scored": scored,
        "policy": pol,
        "labels": LABELS,
        "model_version": "v1",
        "since": None,
        "target_error": pol.target_error,
        "min_evidence": pol.min_evidence,
        "confidence": 0.95,
    }
    args.update(kwargs)
    return partial_judge(**args)


class TestPartialJudge:
    def test_no_serving_model_is_said_plainly(self) -> None:
        verdict = judge_partial(scored_sample(1, 3000), policy(), model_version=None)
        assert not verdict.sufficient and verdict.reason == "no serving model is deployed"

    def test_too_few_labels_are_refused_with_the_count(self) -> None:
        verdict = judge_partial(scored_sample(1, 100), policy(min_evidence=200))
        assert not verdict.sufficient
        assert "only 100 human-labelled cases, 200 needed" in verdict.reason

    def test_a_threshold_below_the_calibrated_one_is_refused_naming_it(self) -> None:
        scored = scored_sample(2, 3000)
        low = judge_partial(scored, policy(confidence_threshold=0.5))
        assert not low.sufficient
        assert low.calibrated_threshold is not None and low.calibrated_threshold > 0.5
        assert f"calibrated threshold {low.calibrated_threshold:.4g}" in low.reason

    def test_at_the_calibrated_threshold_it_passes_with_the_automation_rate(self) -> None:
        scored = scored_sample(2, 3000)
        calibrated = judge_partial(scored, policy()).calibrated_threshold
        assert calibrated is not None
        verdict = judge_partial(scored, policy(confidence_threshold=calibrated))
        assert verdict.sufficient, verdict.reason
        share = sum(s.confidence >= calibrated for s in scored) / len(scored)
        assert verdict.expected_automation_rate == pytest.approx(share)
        assert verdict.error_rate < 0.02
        assert "expected automation" in verdict.reason
        higher = judge_partial(scored, policy(confidence_threshold=min(calibrated + 0.01, 1.0)))
        assert higher.sufficient and higher.expected_automation_rate <= share

    def test_a_class_never_auto_decided_needs_no_threshold(self) -> None:
        scored = scored_sample(2, 3000)
        calibrated = judge_partial(scored, policy()).calibrated_threshold
        assert calibrated is not None
        pol = policy(confidence_threshold=calibrated, class_thresholds={"stain": None})
        verdict = judge_partial(scored, pol)
        assert verdict.sufficient and verdict.method == "pooled"
        assert all(
            s.predicted != "stain"
            for s in scored
            if s.confidence >= calibrated and verdict.auto_decided
        ) or verdict.auto_decided < sum(s.confidence >= calibrated for s in scored)

    def test_a_numeric_class_rule_switches_to_class_conditional_calibration(self) -> None:
        scored = scored_sample(3, 6000)
        pol = policy(confidence_threshold=0.999, class_thresholds={"ok": 0.5}, target_error=0.05)
        verdict = judge_partial(scored, pol)
        assert verdict.method == "per_class"
        assert not verdict.sufficient
        assert "for 'ok' is below its calibrated threshold" in verdict.reason

    def test_the_reported_case_partial_passes_where_full_cannot(self) -> None:
        """96.5% overall: 2% error among automatic decisions is provable, 98% overall not."""
        rng = np.random.default_rng(13)
        n = 1400
        confidences = rng.beta(12.0, 1.0, size=n)
        # wrong with probability 3 (1 - c)^2: about 96% right overall
        correct = rng.random(n) >= 3.0 * (1.0 - confidences) ** 2
        scored = [
            ScoredLabel("ok", float(c), bool(r)) for c, r in zip(confidences, correct, strict=True)
        ]
        accuracy = float(correct.mean())
        assert 0.95 < accuracy < 0.98
        full = evidence_judge(
            level=Level.FULL,
            successes=int(correct.sum()),
            n=n,
            model_version="v1",
            since=None,
            target_accuracy=0.98,
            min_evidence=200,
            confidence=0.95,
        )
        assert not full.sufficient
        probe = judge_partial(scored, policy(target_error=0.02))
        assert probe.calibrated_threshold is not None, probe.reason
        verdict = judge_partial(
            scored, policy(target_error=0.02, confidence_threshold=probe.calibrated_threshold)
        )
        assert verdict.sufficient, verdict.reason
        assert verdict.expected_automation_rate > 0.5


class RealEvidence:
    """The gate's evidence source over fixed scored labels: partial_judge or evidence_judge."""

    def __init__(self, scored: list[ScoredLabel]) -> None:
        self.scored = scored

    def __call__(self, level: Level, targets: Targets, new: GatePolicy) -> EvidenceCheck:
        if level is Level.PARTIAL:
            verdict = judge_partial(
                self.scored,
                new,
                target_error=targets.target_error,
                min_evidence=targets.min_evidence,
            )
            return EvidenceCheck(sufficient=verdict.sufficient, reason=verdict.reason)
        judged = evidence_judge(
            level=level,
            successes=sum(s.correct for s in self.scored),
            n=len(self.scored),
            model_version="v1",
            since=None,
            target_accuracy=targets.target_accuracy,
            min_evidence=targets.min_evidence,
            confidence=0.95,
        )
        return EvidenceCheck(sufficient=judged.sufficient, reason=judged.reason)


SCORED = scored_sample(2, 3000)
CALIBRATED = judge_partial(SCORED, policy()).calibrated_threshold
assert CALIBRATED is not None
ASSISTANCE = policy(level=Level.ASSISTANCE, confidence_threshold=CALIBRATED, target_accuracy=0.85)


@pytest.mark.parametrize(
    ("new", "allowed", "refusal"),
    [
        # partial: judged on the calibrated threshold, not on overall accuracy (0.95 target)
        (replace(ASSISTANCE, level=Level.PARTIAL), True, None),
        (replace(ASSISTANCE, level=Level.PARTIAL, target_accuracy=0.99), True, None),
        (
            replace(ASSISTANCE, level=Level.PARTIAL, confidence_threshold=0.5),
            False,
            Refusal.INSUFFICIENT_EVIDENCE,
        ),
        (
            replace(ASSISTANCE, level=Level.PARTIAL, target_error=0.001),
            False,
            Refusal.INSUFFICIENT_EVIDENCE,
        ),
        # a target error looser than the ceiling is refused even with the evidence
        (replace(ASSISTANCE, level=Level.PARTIAL, target_error=0.2), False, Refusal.BELOW_FLOOR),
        # full: judged on overall accuracy (about 90% here)
        (replace(ASSISTANCE, level=Level.FULL), True, None),
        (
            replace(ASSISTANCE, level=Level.FULL, target_accuracy=0.95),
            False,
            Refusal.INSUFFICIENT_EVIDENCE,
        ),
    ],
)
def test_each_level_is_gated_on_its_own_guarantee(
    new: GatePolicy, allowed: bool, refusal: Refusal | None
) -> None:
    decision = judge_change(
        old=ASSISTANCE,
        new=new,
        floors=FLOORS,
        evidence=RealEvidence(SCORED),
        override=False,
        by_superuser=False,
    )
    assert decision.allowed is allowed, decision.message
    assert decision.refusal is refusal


def test_loosening_the_target_error_at_partial_is_judged_against_the_stricter() -> None:
    old = policy(confidence_threshold=CALIBRATED, target_error=0.02)
    asked: list[Targets] = []

    def evidence(level: Level, targets: Targets, new: GatePolicy) -> EvidenceCheck:
        asked.append(targets)
        return RealEvidence(SCORED)(level, targets, new)

    decision = judge_change(
        old=old,
        new=replace(old, target_error=0.05, confidence_threshold=0.5),
        floors=FLOORS,
        evidence=evidence,
        override=False,
        by_superuser=False,
    )
    assert decision.loosened == ("confidence_threshold", "target_error")
    assert asked[0].target_error == 0.02, "judged against the stricter target"
    assert not decision.allowed
    assert "error 0.02 among automatic decisions" in decision.message


class TestClassConditionalCalibration:
    def test_rare_classes_pool_and_say_how_many_more_labels_they_need(self) -> None:
        scored = scored_sample(5, 3000)
        result = calibrate_by_class(scored, labels=LABELS, target_error=0.05, confidence=0.95)
        own = first_tested_size(0.05, 1 - 0.05 / 3)
        assert result.own_size == own
        hints = {hint.label: hint for hint in result.hints}
        for label in LABELS:
            n = sum(s.predicted == label for s in scored)
            assert hints[label].n == n
            assert hints[label].labels_needed == max(own - n, 0)
            assert hints[label].pooled is (n < own)
        assert result.groups == len([h for h in hints.values() if not h.pooled]) + any(
            h.pooled for h in hints.values()
        )

    def test_a_class_with_no_labels_shares_the_pooled_threshold(self) -> None:
        scored = [s for s in scored_sample(6, 4000) if s.predicted != "stain"]
        result = calibrate_by_class(scored, labels=LABELS, target_error=0.05, confidence=0.95)
        stain = next(h for h in result.hints if h.label == "stain")
        assert stain.n == 0 and stain.pooled and stain.labels_needed == result.own_size
        assert "more" in stain.reason


@pytest.mark.parametrize(
    ("errors", "n", "steps_down"),
    [
        (0, 10, False),  # too few audits
        (2, 200, False),  # 1% against a 2% target
        (6, 200, False),  # 3%: not provably above 2% at 99%
        (12, 200, True),  # 6%: provably above
        (40, 200, True),
    ],
)
def test_the_partial_step_down_judges_error_against_target_error(
    errors: int, n: int, steps_down: bool
) -> None:
    verdict = step_down_error_check(errors, n, target_error=0.02, confidence=0.99)
    assert verdict.step_down is steps_down
    assert verdict.quantity == "error"
    same = step_down_check(n - errors, n, target_accuracy=0.98, confidence=0.99)
    assert same.step_down is verdict.step_down
    if n >= 20:
        assert ("is above" in verdict.reason) is steps_down


def test_since_is_reported_in_the_partial_reason() -> None:
    verdict = judge_partial(SCORED, policy(), since=datetime(2026, 1, 2, 3, 4))
    assert "after the automatic step down of 2026-01-02 03:04 UTC" in verdict.reason
