"""The routing function, table-tested over level x confidence band x class rule x audit draw."""

from __future__ import annotations

import itertools

import pytest

from decisions.routing import (
    Level,
    ModelOpinion,
    Policy,
    ReviewReason,
    RoutingDecision,
    model_runs,
    route,
)

THRESHOLD = 0.9
AUDIT_RATE = 0.1
BELOW, AT, ABOVE = 0.5, THRESHOLD, 0.97
AUDIT_HIT, AUDIT_MISS_EDGE, AUDIT_MISS = 0.05, AUDIT_RATE, 0.6

REVIEW = "review"
DECIDE = "decide"
AUDIT = "decide+audit"


def expected(level: Level, confidence: float, draw: float) -> tuple[str, ReviewReason | None, bool]:
    """The levels table (docs/architecture.md), written out independently of the code."""
    if level is Level.HUMAN_ONLY:
        return REVIEW, ReviewReason.HUMAN_ONLY, False
    if level is Level.SHADOW:
        return REVIEW, ReviewReason.SHADOW, False
    if level is Level.ASSISTANCE:
        return REVIEW, ReviewReason.ASSISTANCE, True
    if level is Level.PARTIAL and confidence < THRESHOLD:
        return REVIEW, ReviewReason.LOW_CONFIDENCE, True
    if draw < AUDIT_RATE:
        return AUDIT, ReviewReason.AUDIT, False
    return DECIDE, None, False


def outcome(decision: RoutingDecision) -> str:
    if decision.decide_by_model and decision.send_to_review:
        return AUDIT
    return DECIDE if decision.decide_by_model else REVIEW


CASES = list(
    itertools.product(list(Level), [BELOW, AT, ABOVE], [AUDIT_HIT, AUDIT_MISS_EDGE, AUDIT_MISS])
)


@pytest.mark.parametrize(("level", "confidence", "draw"), CASES)
def test_every_level_confidence_band_and_audit_draw(
    level: Level, confidence: float, draw: float
) -> None:
    policy = Policy(level=level, confidence_threshold=THRESHOLD, audit_rate=AUDIT_RATE)
    decision = route(policy=policy, opinion=ModelOpinion("ok", confidence), audit_draw=draw)
    want_outcome, want_reason, want_show = expected(level, confidence, draw)
    assert outcome(decision) == want_outcome
    assert decision.reason == want_reason
    assert decision.show_suggestion is want_show
    if decision.decide_by_model:
        assert decision.auto_label == "ok"
    else:
        assert decision.auto_label is None


def test_confidence_exactly_at_threshold_is_decided_by_model_in_partial() -> None:
    policy = Policy(level=Level.PARTIAL, confidence_threshold=0.9, audit_rate=0.0)
    decision = route(policy=policy, opinion=ModelOpinion("ok", 0.9), audit_draw=0.5)
    assert decision.decide_by_model and not decision.send_to_review
    just_below = route(policy=policy, opinion=ModelOpinion("ok", 0.8999999), audit_draw=0.5)
    assert just_below.reason is ReviewReason.LOW_CONFIDENCE


@pytest.mark.parametrize("level", list(Level))
def test_a_model_that_could_not_score_never_decides(level: Level) -> None:
    policy = Policy(level=level, confidence_threshold=0.0, audit_rate=0.0)
    decision = route(policy=policy, opinion=None, audit_draw=0.99)
    assert not decision.decide_by_model
    assert decision.send_to_review
    assert decision.show_suggestion is False
    want = ReviewReason.HUMAN_ONLY if level is Level.HUMAN_ONLY else ReviewReason.MODEL_ERROR
    assert decision.reason is want


@pytest.mark.parametrize(
    ("level", "label", "confidence", "want_outcome", "want_reason"),
    [
        # "crack" is never auto-decided, at any confidence, in partial or full.
        (Level.PARTIAL, "crack", 0.999, REVIEW, ReviewReason.CLASS_RULE),
        (Level.FULL, "crack", 0.999, REVIEW, ReviewReason.CLASS_RULE),
        # "ok" has its own, lower threshold that replaces the global one...
        (Level.PARTIAL, "ok", 0.85, DECIDE, None),
        (Level.PARTIAL, "ok", 0.8, DECIDE, None),
        (Level.PARTIAL, "ok", 0.79, REVIEW, ReviewReason.CLASS_RULE),
        # ...and applies in full automation too.
        (Level.FULL, "ok", 0.79, REVIEW, ReviewReason.CLASS_RULE),
        (Level.FULL, "ok", 0.81, DECIDE, None),
        # A class without a rule follows the global threshold (partial) or none (full).
        (Level.PARTIAL, "stain", 0.85, REVIEW, ReviewReason.LOW_CONFIDENCE),
        (Level.PARTIAL, "stain", 0.95, DECIDE, None),
        (Level.FULL, "stain", 0.10, DECIDE, None),
        # Below partial, class rules change nothing: humans review everything anyway.
        (Level.ASSISTANCE, "ok", 0.99, REVIEW, ReviewReason.ASSISTANCE),
        (Level.SHADOW, "crack", 0.99, REVIEW, ReviewReason.SHADOW),
    ],
)
def test_per_class_rules(
    level: Level, label: str, confidence: float, want_outcome: str, want_reason: ReviewReason | None
) -> None:
    policy = Policy(
        level=level,
        confidence_threshold=0.9,
        audit_rate=0.0,
        class_thresholds={"ok": 0.8, "crack": None},
    )
    decision = route(policy=policy, opinion=ModelOpinion(label, confidence), audit_draw=0.5)
    assert outcome(decision) == want_outcome
    assert decision.reason == want_reason
    if want_reason is ReviewReason.CLASS_RULE:
        assert decision.show_suggestion is True


def test_audit_share_is_the_audit_rate_over_uniform_draws() -> None:
    policy = Policy(level=Level.FULL, confidence_threshold=0.9, audit_rate=0.2)
    draws = [i / 1000 for i in range(1000)]
    audited = sum(
        route(policy=policy, opinion=ModelOpinion("ok", 0.99), audit_draw=d).is_audit for d in draws
    )
    assert audited == 200


def test_audit_is_blind_and_keeps_the_model_decision() -> None:
    policy = Policy(level=Level.PARTIAL, confidence_threshold=0.9, audit_rate=1.0)
    decision = route(policy=policy, opinion=ModelOpinion("scratch", 0.95), audit_draw=0.3)
    assert decision.decide_by_model and decision.send_to_review
    assert decision.reason is ReviewReason.AUDIT
    assert decision.show_suggestion is False
    assert decision.auto_label == "scratch"


def test_zero_audit_rate_never_audits() -> None:
    policy = Policy(level=Level.FULL, confidence_threshold=0.9, audit_rate=0.0)
    assert not route(policy=policy, opinion=ModelOpinion("ok", 0.99), audit_draw=0.0).is_audit


def test_model_runs_everywhere_but_human_only() -> None:
    assert [model_runs(level) for level in Level] == [False, True, True, True, True]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"confidence_threshold": 1.5},
        {"confidence_threshold": -0.1},
        {"confidence_threshold": 0.5, "audit_rate": 1.2},
    ],
)
def test_policy_refuses_values_outside_unit_interval(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Policy(level=Level.PARTIAL, **kwargs)


@pytest.mark.parametrize("draw", [-0.1, 1.0, 2.0])
def test_audit_draw_must_be_in_unit_interval(draw: float) -> None:
    policy = Policy(level=Level.FULL, confidence_threshold=0.9)
    with pytest.raises(ValueError):
        route(policy=policy, opinion=ModelOpinion("ok", 0.99), audit_draw=draw)


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError):
        Policy(level="autopilot", confidence_threshold=0.9)  # type: ignore[arg-type]
