"""The evidence gate: whether one change of a workflow's automation policy may be made.

Pure: no ORM, no settings, no clock. ``judge_change`` is the rule, and
``automation.services.automation_update`` its only caller; the API, the automation
page, the Django admin and ``manage.py automation_set`` all go through that service
(docs/decisions.md D10).

The rule, for a change from policy ``old`` to policy ``new``:

1. If ``new.level`` is not automated (``human_only``, ``shadow``, ``assistance``) the
   change is allowed: no case is decided by the model there. Moving down to such a
   level is always allowed, whatever else changes with it.
2. At or into an automated level (``partial``, ``full``) the change is judged when it
   *raises* the level or *loosens* a guarantee (a lower target accuracy, minimum
   evidence, audit rate, confidence threshold, or a per-class rule that lets the model
   decide more of a class). Then:

   a. the evidence for ``new.level`` must be sufficient against the *stricter* of the
      old and new target accuracy and minimum evidence, so that a request cannot
      loosen the targets it is judged by;
   b. the floors must hold: for every policy field when the level is raised, for each
      loosened field otherwise.

   A change that only tightens (or only moves down to another automated level) is
   allowed: it cannot make automated decisions less guarded.
3. What 2 refuses, a superuser may override explicitly; the change is then logged as
   overridden with who did it. Anyone else asking for the override is refused.

The confidence threshold counts as a guarantee at ``full`` too: ``full`` ignores it, but
the automatic step down lands on ``partial``, which uses it.

Two guarantees, two gates (docs/decisions.md D54). ``partial`` only decides the cases at
or above its thresholds, so it is judged on the error *among those cases*: the
calibrated threshold for ``target_error`` (Learn-then-Test, ``decisions.stats
.calibrate_threshold``) on unbiased labels, and the policy's thresholds must be at or
above it (``partial_judge``). ``full`` decides every case, so it is judged on the
overall accuracy's lower bound against ``target_accuracy`` (``evidence_judge``). A higher
``target_error`` loosens the guarantee like a lower ``target_accuracy``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from decisions.routing import AUTOMATED_LEVELS, Level, level_rank
from decisions.stats import (
    ThresholdRecommendation,
    binomial_upper_bound,
    calibrate_threshold,
    evidence_for_level,
    labels_needed_at_accuracy,
)
from decisions.thresholds import ClassCalibration, ScoredLabel, calibrate_by_class

# Policy fields where a higher value is the stricter guarantee.
HIGHER_IS_STRICTER = ("target_accuracy", "min_evidence", "audit_rate", "confidence_threshold")
# Policy fields where a lower value is the stricter guarantee.
LOWER_IS_STRICTER = ("target_error",)
DEFAULT_TARGET_ERROR = 0.02


@dataclass(frozen=True)
class GatePolicy:
    """The policy fields the gate compares (a snapshot of one workflow's policy)."""

    level: Level
    confidence_threshold: float
    audit_rate: float
    target_accuracy: float
    min_evidence: int
    class_thresholds: Mapping[str, float | None] = field(
        default_factory=lambda: MappingProxyType({})
    )
    target_error: float = DEFAULT_TARGET_ERROR

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", Level(self.level))
        object.__setattr__(self, "class_thresholds", MappingProxyType(dict(self.class_thresholds)))

    def threshold_for(self, label: str) -> float:
        """The confidence the model needs to decide ``label`` at ``partial`` (inf: never)."""
        return _effective_class_threshold(self, label)


@dataclass(frozen=True)
class Floors:
    """The least an automated level may run with, unless a superuser overrides.

    ``target_error`` is a ceiling: the loosest error target among automatic decisions.
    """

    audit_rate: float
    min_evidence: int
    target_accuracy: float
    target_error: float = 0.1

    def problems(self, policy: GatePolicy, fields: tuple[str, ...]) -> list[str]:
        """What in ``policy`` is below its floor (above its ceiling), among ``fields``."""
        found = []
        for name in ("target_accuracy", "min_evidence", "audit_rate"):
            if name in fields and getattr(policy, name) < getattr(self, name):
                found.append(
                    f"{name} {getattr(policy, name):g} is below the floor {getattr(self, name):g} "
                    f"for {policy.level.value}"
                )
        if "target_error" in fields and policy.target_error > self.target_error:
            found.append(
                f"target_error {policy.target_error:g} is above the ceiling "
                f"{self.target_error:g} for {policy.level.value}"
            )
        return found


@dataclass(frozen=True)
class Targets:
    """The stricter of the old and new targets a change is judged against."""

    target_accuracy: float
    target_error: float
    min_evidence: int


@dataclass(frozen=True)
class EvidenceCheck:
    """The evidence for a level against given targets; ``details`` is what to record."""

    sufficient: bool
    reason: str
    details: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


# (level, targets, the new policy) -> the evidence for that level against those targets;
# at ``partial`` the new policy's thresholds are judged against the calibrated ones.
EvidenceSource = Callable[[Level, Targets, GatePolicy], EvidenceCheck]


class Refusal(StrEnum):
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    BELOW_FLOOR = "below_floor"
    OVERRIDE_FORBIDDEN = "override"


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer for one change.

    ``allowed`` with ``overridden`` means a superuser's override let through what the
    gate refused (``problems`` says what). ``evidence`` is the evidence judged, when the
    change needed it; ``target_accuracy``/``min_evidence`` the stricter targets it was
    judged against.
    """

    allowed: bool
    overridden: bool
    refusal: Refusal | None
    raising: bool
    loosened: tuple[str, ...]
    problems: tuple[str, ...]
    evidence: EvidenceCheck | None
    target_accuracy: float | None = None
    min_evidence: int | None = None
    message: str = ""
    target_error: float | None = None


def _effective_class_threshold(policy: GatePolicy, label: str) -> float:
    """The confidence the model needs to decide ``label`` (infinity: never)."""
    if label not in policy.class_thresholds:
        return policy.confidence_threshold
    rule = policy.class_thresholds[label]
    return math.inf if rule is None else float(rule)


def loosened_fields(old: GatePolicy, new: GatePolicy) -> tuple[str, ...]:
    """The policy fields whose new value guards automated decisions less than the old."""
    found = [name for name in HIGHER_IS_STRICTER if getattr(new, name) < getattr(old, name)]
    found += [name for name in LOWER_IS_STRICTER if getattr(new, name) > getattr(old, name)]
    ruled = set(old.class_thresholds) | set(new.class_thresholds)
    if any(
        _effective_class_threshold(new, label) < _effective_class_threshold(old, label)
        for label in ruled
    ):
        found.append("class_thresholds")
    return tuple(found)


def judge_change(
    *,
    old: GatePolicy,
    new: GatePolicy,
    floors: Floors,
    evidence: EvidenceSource,
    override: bool,
    by_superuser: bool,
) -> GateDecision:
    """Whether the change from ``old`` to ``new`` may be made (the module docstring's rule).

    ``evidence`` is called at most once, and only when the change needs evidence.
    """
    raising = level_rank(new.level) > level_rank(old.level)
    loosened = loosened_fields(old, new)
    if new.level not in AUTOMATED_LEVELS or not (raising or loosened):
        return GateDecision(
            allowed=True,
            overridden=False,
            refusal=None,
            raising=raising,
            loosened=loosened,
            problems=(),
            evidence=None,
        )

    target_accuracy = max(old.target_accuracy, new.target_accuracy)
    target_error = min(old.target_error, new.target_error)
    min_evidence = max(old.min_evidence, new.min_evidence)
    judged = evidence(
        new.level,
        Targets(
            target_accuracy=target_accuracy, target_error=target_error, min_evidence=min_evidence
        ),
        new,
    )
    floor_fields = (
        ("target_accuracy", "target_error", "min_evidence", "audit_rate") if raising else loosened
    )
    below_floor = floors.problems(new, floor_fields)
    problems = ([] if judged.sufficient else [judged.reason]) + below_floor

    def decided(
        *, allowed: bool, overridden: bool, refusal: Refusal | None, message: str = ""
    ) -> GateDecision:
        return GateDecision(
            allowed=allowed,
            overridden=overridden,
            refusal=refusal,
            raising=raising,
            loosened=loosened,
            problems=tuple(problems),
            evidence=judged,
            target_accuracy=target_accuracy,
            min_evidence=min_evidence,
            message=message,
            target_error=target_error,
        )

    if not problems:
        return decided(allowed=True, overridden=False, refusal=None)

    if raising:
        what = f"cannot raise the level to {new.level.value}"
    else:
        what = f"cannot loosen {', '.join(loosened)} at {new.level.value}"
    if loosened:
        guarantee = (
            f"error {target_error:g} among automatic decisions"
            if new.level is Level.PARTIAL
            else f"accuracy {target_accuracy:g}"
        )
        what += f" (judged against the stricter targets: {guarantee}, {min_evidence} labels)"
    message = f"{what}: {'; '.join(problems)}"
    if override and by_superuser:
        return decided(allowed=True, overridden=True, refusal=None, message=message)
    if override:
        refusal = Refusal.OVERRIDE_FORBIDDEN
        message = f"only a superuser may override the evidence gate ({message})"
    elif judged.sufficient:
        refusal = Refusal.BELOW_FLOOR
    else:
        refusal = Refusal.INSUFFICIENT_EVIDENCE
    return decided(allowed=False, overridden=False, refusal=refusal, message=message)


@dataclass(frozen=True)
class EvidenceJudgement:
    """Whether the labels counted for one level earn it, with the reason in words.

    ``labels_needed`` estimates how many labels would do at the accuracy seen so far
    (None when the evidence is sufficient, when nothing was seen, or when that accuracy
    cannot reach the target).
    """

    sufficient: bool
    reason: str
    lower_bound: float
    target_accuracy: float
    min_evidence: int
    confidence: float
    labels_needed: int | None


def evidence_judge(
    *,
    level: Level,
    successes: int,
    n: int,
    model_version: str | None,
    since: datetime | None,
    target_accuracy: float,
    min_evidence: int,
    confidence: float,
) -> EvidenceJudgement:
    """Judge ``successes`` right out of ``n`` unbiased labels of ``model_version`` for ``level``.

    ``since`` is the automatic step down after which the labels were given (hysteresis:
    only fresh labels count then); ``model_version`` None means none is serving.
    """
    if model_version is None:
        return EvidenceJudgement(
            sufficient=False,
            reason="no serving model is deployed",
            lower_bound=0.0,
            target_accuracy=target_accuracy,
            min_evidence=min_evidence,
            confidence=confidence,
            labels_needed=None,
        )
    verdict = evidence_for_level(
        successes,
        n,
        target_accuracy=target_accuracy,
        min_evidence=min_evidence,
        confidence=confidence,
    )
    counted = "shadow and assistance reviews" + (
        " and audits at full automation"
        if level is Level.FULL
        else " and audits of automated decisions"
    )
    reason = f"{verdict.reason}; counted: {counted} of {model_version}"
    if since is not None:
        reason += (
            f", labelled after the automatic step down of "
            f"{since:%Y-%m-%d %H:%M} UTC (fresh evidence only)"
        )
    labels_needed = None
    if not verdict.sufficient and n:
        labels_needed = labels_needed_at_accuracy(
            successes / n, target_accuracy, confidence=confidence, min_evidence=min_evidence
        )
        if labels_needed is not None:
            reason += (
                f"; at the accuracy seen so far about {max(labels_needed - n, 0)} "
                f"more labels would do"
            )
    return EvidenceJudgement(
        sufficient=verdict.sufficient,
        reason=reason,
        lower_bound=verdict.lower_bound,
        target_accuracy=verdict.target_accuracy,
        min_evidence=verdict.min_evidence,
        confidence=confidence,
        labels_needed=labels_needed,
    )


@dataclass(frozen=True)
class PartialJudgement:
    """Whether the policy's thresholds keep the error of automatic decisions below target.

    ``method``: ``pooled`` (one calibrated threshold for every class; used when the policy
    has no numeric per-class threshold) or ``per_class`` (class-conditional calibration
    with a pooled fallback for rare classes, used when it has one: the choice follows the
    policy, never the labels). ``calibrated_threshold``: the pooled recommendation (None
    when none passes, or with ``per_class``); ``class_thresholds`` the calibrated ones per
    class with ``per_class``. ``expected_automation_rate`` is the share of the labelled
    cases the policy's thresholds would auto-decide, ``error_rate`` the error among them
    and ``error_upper_bound`` its exact one-sided bound at ``confidence`` (for display:
    the guarantee is the calibration's).
    """

    sufficient: bool
    reason: str
    n: int
    target_error: float
    min_evidence: int
    confidence: float
    method: str
    calibrated_threshold: float | None
    class_thresholds: Mapping[str, float | None]
    expected_automation_rate: float
    auto_decided: int
    errors: int
    error_rate: float
    error_upper_bound: float
    recommendation: ThresholdRecommendation | ClassCalibration | None


def _policy_outcome(scored: list[ScoredLabel], policy: GatePolicy) -> tuple[int, int]:
    """(auto-decided, wrong) among ``scored`` under the policy's thresholds at partial."""
    decided = [s for s in scored if s.confidence >= policy.threshold_for(s.predicted)]
    return len(decided), sum(1 for s in decided if not s.correct)


def partial_judge(
    *,
    scored: list[ScoredLabel],
    policy: GatePolicy,
    labels: list[str],
    model_version: str | None,
    since: datetime | None,
    target_error: float,
    min_evidence: int,
    confidence: float,
) -> PartialJudgement:
    """Judge ``policy``'s thresholds for ``partial`` on unbiased labelled predictions.

    Sufficient iff a model serves, at least ``min_evidence`` labels were counted, the
    calibration (``decisions.stats.calibrate_threshold``, Learn-then-Test) finds a
    threshold for ``target_error`` at ``confidence``, and every threshold the policy
    applies is at or above the calibrated one for its class. Fixed-sequence testing
    rejects every threshold above the one it stops at, so with probability >=
    ``confidence`` the true error among future cases at or above any of them is below
    ``target_error``: a policy at or above the calibrated threshold inherits the
    guarantee. A class the policy never auto-decides (null) needs no threshold.
    """
    n = len(scored)
    decided, wrong = _policy_outcome(scored, policy)
    shown = {
        "n": n,
        "target_error": target_error,
        "min_evidence": min_evidence,
        "confidence": confidence,
        "expected_automation_rate": decided / n if n else 0.0,
        "auto_decided": decided,
        "errors": wrong,
        "error_rate": wrong / decided if decided else 0.0,
        "error_upper_bound": binomial_upper_bound(wrong, decided, confidence) if decided else 1.0,
    }
    per_class_method = any(value is not None for value in policy.class_thresholds.values())
    method = "per_class" if per_class_method else "pooled"
    if model_version is None:
        return PartialJudgement(
            sufficient=False,
            reason="no serving model is deployed",
            method=method,
            calibrated_threshold=None,
            class_thresholds=MappingProxyType({}),
            recommendation=None,
            **shown,  # type: ignore[arg-type]
        )
    problems = []
    if n < min_evidence:
        problems.append(f"only {n} human-labelled cases, {min_evidence} needed")
    calibrated: float | None = None
    by_class: dict[str, float | None] = {}
    recommendation: ThresholdRecommendation | ClassCalibration
    if per_class_method:
        recommendation = calibrate_by_class(
            scored, labels=labels, target_error=target_error, confidence=confidence
        )
        by_class = dict(recommendation.thresholds)
        for hint in recommendation.hints:
            needed = policy.threshold_for(hint.label)
            if math.isinf(needed):
                continue
            if hint.threshold is None:
                problems.append(
                    f"no threshold for {hint.label!r} keeps the error below "
                    f"{target_error:.2%}: {hint.reason}"
                )
            elif needed < hint.threshold:
                problems.append(
                    f"the threshold {needed:.4g} for {hint.label!r} is below its calibrated "
                    f"threshold {hint.threshold:.4g}"
                )
    else:
        recommendation = calibrate_threshold(
            [s.confidence for s in scored],
            [s.correct for s in scored],
            target_error=target_error,
            confidence=confidence,
        )
        calibrated = recommendation.threshold
        if calibrated is None:
            problems.append(recommendation.reason)
        else:
            low = [
                label
                for label in labels
                if not math.isinf(policy.threshold_for(label))
                and policy.threshold_for(label) < calibrated
            ]
            if low:
                problems.append(
                    f"the threshold {min(policy.threshold_for(label) for label in low):.4g} "
                    f"(for {', '.join(repr(label) for label in low)}) is below the calibrated "
                    f"threshold {calibrated:.4g} for an error below {target_error:.2%} with "
                    f"{confidence:.0%} confidence; apply the calibrated threshold or a higher one"
                )
    counted = (
        f"counted: {n} shadow and assistance reviews and audits at full automation of "
        f"{model_version}"
    )
    if since is not None:
        counted += (
            f", labelled after the automatic step down of {since:%Y-%m-%d %H:%M} UTC "
            f"(fresh evidence only)"
        )
    rate = f"expected automation {shown['expected_automation_rate']:.1%} of cases"
    if problems:
        reason = f"{'; '.join(problems)}; {counted}"
    elif per_class_method:
        reason = (
            f"every class's threshold is at or above its calibrated threshold (error below "
            f"{target_error:.2%} with {confidence:.0%} confidence, per class with a pooled "
            f"fallback for rare classes); {rate}; {counted}"
        )
    else:
        reason = (
            f"the threshold {policy.confidence_threshold:.4g} is at or above the calibrated "
            f"threshold {calibrated:.4g}: error among automatic decisions below "
            f"{target_error:.2%} with {confidence:.0%} confidence; {rate}; {counted}"
        )
    return PartialJudgement(
        sufficient=not problems,
        reason=reason,
        method=method,
        calibrated_threshold=calibrated,
        class_thresholds=MappingProxyType(by_class),
        recommendation=recommendation,
        **shown,  # type: ignore[arg-type]
    )
