"""The evidence gate's rule (decisions.gate.judge_change) as a table, without Django."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from decisions.gate import (
    EvidenceCheck,
    Floors,
    GatePolicy,
    Refusal,
    Targets,
    judge_change,
    loosened_fields,
)
from decisions.routing import Level

FLOORS = Floors(audit_rate=0.01, min_evidence=50, target_accuracy=0.8)
BASE = GatePolicy(
    level=Level.PARTIAL,
    confidence_threshold=0.9,
    audit_rate=0.05,
    target_accuracy=0.95,
    min_evidence=200,
    class_thresholds={"crack": None, "ok": 0.8},
)


class Evidence:
    """A fake evidence source: sufficient iff the asked targets are at most what it meets."""

    def __init__(
        self, *, meets_accuracy: float = 0.0, labels: int = 0, meets_error: float = 1.0
    ) -> None:
        self.meets_accuracy = meets_accuracy
        self.meets_error = meets_error
        self.labels = labels
        self.asked: list[tuple[Level, float, int]] = []
        self.asked_error: list[float] = []

    def __call__(self, level: Level, targets: Targets, policy: GatePolicy) -> EvidenceCheck:
        target_accuracy, min_evidence = targets.target_accuracy, targets.min_evidence
        self.asked.append((level, target_accuracy, min_evidence))
        self.asked_error.append(targets.target_error)
        problems = []
        if self.meets_error > targets.target_error:
            problems.append(f"error above the target {targets.target_error:g}")
        if self.labels < min_evidence:
            problems.append(f"only {self.labels} human-labelled cases, {min_evidence} needed")
        if self.meets_accuracy < target_accuracy:
            problems.append(f"accuracy below the target {target_accuracy:g}")
        return EvidenceCheck(sufficient=not problems, reason="; ".join(problems) or "meets")


NO_EVIDENCE = {"meets_accuracy": 0.0, "labels": 0, "meets_error": 1.0}
STRONG = {"meets_accuracy": 0.99, "labels": 10_000, "meets_error": 0.001}
# Meets the loosened targets below but not BASE's own (0.95 and 2% error on 200 labels).
MEETS_ONLY_LOOSER = {"meets_accuracy": 0.9, "labels": 100, "meets_error": 0.05}


def judge(
    old: GatePolicy,
    new: GatePolicy,
    evidence: Evidence,
    *,
    override: bool = False,
    superuser: bool = False,
) -> Any:
    return judge_change(
        old=old,
        new=new,
        floors=FLOORS,
        evidence=evidence,
        override=override,
        by_superuser=superuser,
    )


# Each loosening alone, with a value still above every floor.
LOOSENINGS = {
    "target_accuracy": {"target_accuracy": 0.85},
    "min_evidence": {"min_evidence": 100},
    "audit_rate": {"audit_rate": 0.02},
    "confidence_threshold": {"confidence_threshold": 0.7},
    "class_thresholds": {"class_thresholds": {"crack": 0.99, "ok": 0.8}},
    "target_error": {"target_error": 0.05},
}
TIGHTENINGS = {
    "target_accuracy": {"target_accuracy": 0.97},
    "min_evidence": {"min_evidence": 500},
    "audit_rate": {"audit_rate": 0.2},
    "confidence_threshold": {"confidence_threshold": 0.95},
    "class_thresholds": {"class_thresholds": {"crack": None, "ok": 0.9, "stain": None}},
    "target_error": {"target_error": 0.01},
}


class TestLoosenedFields:
    @pytest.mark.parametrize("name", sorted(LOOSENINGS))
    def test_each_loosening_is_found_alone(self, name: str) -> None:
        assert loosened_fields(BASE, replace(BASE, **LOOSENINGS[name])) == (name,)

    @pytest.mark.parametrize("name", sorted(TIGHTENINGS))
    def test_tightening_is_not_loosening(self, name: str) -> None:
        assert loosened_fields(BASE, replace(BASE, **TIGHTENINGS[name])) == ()

    @pytest.mark.parametrize(
        ("rules", "loosened"),
        [
            ({"ok": 0.8}, True),  # crack: never -> global 0.9
            ({"crack": None}, False),  # ok: own 0.8 -> global 0.9 (stricter)
            ({"crack": None, "ok": 0.5}, True),
            ({"crack": None, "ok": 0.8, "scratch": 0.85}, True),  # scratch: 0.9 -> 0.85
            ({"crack": None, "ok": 0.8, "scratch": None}, False),
        ],
    )
    def test_class_rules_compare_the_threshold_each_class_needs(
        self, rules: dict, loosened: bool
    ) -> None:
        found = loosened_fields(BASE, replace(BASE, class_thresholds=rules))
        assert ("class_thresholds" in found) is loosened


class TestTheRule:
    @pytest.mark.parametrize("level", [Level.PARTIAL, Level.FULL])
    @pytest.mark.parametrize("name", sorted(LOOSENINGS))
    def test_each_loosening_at_an_automated_level_is_judged_against_the_stricter(
        self, level: Level, name: str
    ) -> None:
        old = replace(BASE, level=level)
        new = replace(old, **LOOSENINGS[name])
        evidence = Evidence(**MEETS_ONLY_LOOSER)
        decision = judge(old, new, evidence)
        assert not decision.allowed
        assert decision.refusal is Refusal.INSUFFICIENT_EVIDENCE
        assert evidence.asked == [(level, 0.95, 200)], "the stricter targets, the new level"
        assert decision.loosened == (name,)
        assert decision.message.startswith(f"cannot loosen {name} at {level.value}")
        assert judge(old, new, Evidence(**STRONG)).allowed

    @pytest.mark.parametrize("level", [Level.PARTIAL, Level.FULL])
    @pytest.mark.parametrize("name", sorted(TIGHTENINGS))
    def test_tightening_needs_no_evidence(self, level: Level, name: str) -> None:
        evidence = Evidence(**NO_EVIDENCE)
        decision = judge(
            replace(BASE, level=level), replace(BASE, level=level, **TIGHTENINGS[name]), evidence
        )
        assert decision.allowed and not decision.overridden
        assert evidence.asked == []

    @pytest.mark.parametrize("level", [Level.HUMAN_ONLY, Level.SHADOW, Level.ASSISTANCE])
    @pytest.mark.parametrize("name", sorted(LOOSENINGS))
    def test_below_automation_nothing_is_judged(self, level: Level, name: str) -> None:
        old = replace(BASE, level=level)
        evidence = Evidence(**NO_EVIDENCE)
        wild = {"target_accuracy": 0.0, "min_evidence": 0, "audit_rate": 0.0}
        assert judge(old, replace(old, **(LOOSENINGS[name] | wild)), evidence).allowed
        assert evidence.asked == []

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            (Level.FULL, Level.HUMAN_ONLY),
            (Level.FULL, Level.ASSISTANCE),
            (Level.PARTIAL, Level.SHADOW),
            (Level.FULL, Level.PARTIAL),
        ],
    )
    def test_moving_down_is_always_allowed(self, old: Level, new: Level) -> None:
        legacy = replace(BASE, level=old, audit_rate=0.0, min_evidence=0)
        evidence = Evidence(**NO_EVIDENCE)
        decision = judge(legacy, replace(legacy, level=new), evidence)
        assert decision.allowed and not decision.raising
        assert evidence.asked == []

    def test_moving_down_to_an_automated_level_while_loosening_is_judged(self) -> None:
        old = replace(BASE, level=Level.FULL)
        decision = judge(old, replace(old, level=Level.PARTIAL, audit_rate=0.0), Evidence(**STRONG))
        assert not decision.allowed and decision.refusal is Refusal.BELOW_FLOOR
        assert "audit_rate 0 is below the floor 0.01 for partial" in decision.message

    def test_the_reported_bypass_is_refused_with_the_missing_evidence(self) -> None:
        """Raise to full and loosen every target in one request, on no labels."""
        old = replace(BASE, level=Level.SHADOW)
        new = replace(old, level=Level.FULL, min_evidence=0, target_accuracy=0.0, audit_rate=0.0)
        evidence = Evidence(**NO_EVIDENCE)
        decision = judge(old, new, evidence)
        assert not decision.allowed
        assert decision.refusal is Refusal.INSUFFICIENT_EVIDENCE
        assert evidence.asked == [(Level.FULL, 0.95, 200)]
        assert decision.message.startswith("cannot raise the level to full")
        for text in (
            "only 0 human-labelled cases, 200 needed",
            "target_accuracy 0 is below the floor 0.8",
            "min_evidence 0 is below the floor 50",
            "audit_rate 0 is below the floor 0.01",
        ):
            assert text in decision.message, text

    def test_raising_with_evidence_but_below_a_floor_is_refused(self) -> None:
        old = replace(BASE, level=Level.ASSISTANCE, audit_rate=0.0)
        decision = judge(old, replace(old, level=Level.PARTIAL), Evidence(**STRONG))
        assert decision.refusal is Refusal.BELOW_FLOOR
        assert decision.message == (
            "cannot raise the level to partial: audit_rate 0 is below the floor 0.01 for partial"
        )

    def test_raising_with_evidence_within_the_floors_is_allowed(self) -> None:
        old = replace(BASE, level=Level.ASSISTANCE)
        decision = judge(old, replace(old, level=Level.FULL), Evidence(**STRONG))
        assert decision.allowed and decision.raising and not decision.overridden
        assert decision.evidence is not None and decision.evidence.sufficient

    def test_raising_and_tightening_is_judged_against_the_new_targets(self) -> None:
        old = replace(BASE, level=Level.SHADOW)
        evidence = Evidence(**STRONG)
        judge(
            old, replace(old, level=Level.PARTIAL, target_accuracy=0.98, min_evidence=300), evidence
        )
        assert evidence.asked == [(Level.PARTIAL, 0.98, 300)]

    def test_a_looser_target_set_below_automation_then_raising_keeps_the_floors(self) -> None:
        """Two steps (loosen at shadow, then raise): each logged, and the floors hold."""
        old = replace(BASE, level=Level.SHADOW)
        loosened = replace(old, target_accuracy=0.5, min_evidence=10)
        assert judge(old, loosened, Evidence(**NO_EVIDENCE)).allowed
        decision = judge(loosened, replace(loosened, level=Level.PARTIAL), Evidence(**STRONG))
        assert decision.refusal is Refusal.BELOW_FLOOR
        assert "target_accuracy 0.5 is below the floor 0.8" in decision.message
        assert "min_evidence 10 is below the floor 50" in decision.message


class TestOverride:
    def bypass(self) -> tuple[GatePolicy, GatePolicy]:
        old = replace(BASE, level=Level.SHADOW)
        return old, replace(
            old, level=Level.FULL, min_evidence=0, target_accuracy=0.0, audit_rate=0.0
        )

    def test_a_superusers_override_is_allowed_and_marked(self) -> None:
        decision = judge(*self.bypass(), Evidence(**NO_EVIDENCE), override=True, superuser=True)
        assert decision.allowed and decision.overridden and decision.refusal is None
        assert len(decision.problems) == 4

    def test_anyone_else_asking_for_the_override_is_refused(self) -> None:
        decision = judge(*self.bypass(), Evidence(**NO_EVIDENCE), override=True, superuser=False)
        assert not decision.allowed and decision.refusal is Refusal.OVERRIDE_FORBIDDEN
        assert decision.message.startswith("only a superuser may override the evidence gate")

    def test_a_superuser_without_the_flag_is_judged_like_anyone(self) -> None:
        decision = judge(*self.bypass(), Evidence(**NO_EVIDENCE), override=False, superuser=True)
        assert not decision.allowed and decision.refusal is Refusal.INSUFFICIENT_EVIDENCE

    def test_an_unneeded_override_is_not_recorded_as_one(self) -> None:
        old = replace(BASE, level=Level.ASSISTANCE)
        decision = judge(old, replace(old, level=Level.PARTIAL), Evidence(**STRONG), override=True)
        assert decision.allowed and not decision.overridden


def test_the_gate_imports_no_django() -> None:
    import subprocess
    import sys

    code = (
        "import sys, decisions.gate; "
        "assert not [m for m in sys.modules if m.startswith('django')], 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
