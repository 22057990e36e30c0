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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from decisions.routing import AUTOMATED_LEVELS, Level, level_rank
from decisions.stats import evidence_for_level, labels_needed_at_accuracy

# Policy fields where a higher value is the stricter guarantee.
HIGHER_IS_STRICTER = ("target_accuracy", "min_evidence", "audit_rate", "confidence_threshold")


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", Level(self.level))
        object.__setattr__(self, "class_thresholds", MappingProxyType(dict(self.class_thresholds)))


@dataclass(frozen=True)
class Floors:
    """The least an automated level may run with, unless a superuser overrides."""

    audit_rate: float
    min_evidence: int
    target_accuracy: float

    def problems(self, policy: GatePolicy, fields: tuple[str, ...]) -> list[str]:
        """What in ``policy`` is below its floor, among ``fields``."""
        found = []
        for name in ("target_accuracy", "min_evidence", "audit_rate"):
            if name in fields and getattr(policy, name) < getattr(self, name):
                found.append(
                    f"{name} {getattr(policy, name):g} is below the floor {getattr(self, name):g} "
                    f"for {policy.level.value}"
                )
        return found


@dataclass(frozen=True)
class EvidenceCheck:
    """The evidence for a level against given targets; ``details`` is what to record."""

    sufficient: bool
    reason: str
    details: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


# (level, target_accuracy, min_evidence) -> the evidence against those targets.
EvidenceSource = Callable[[Level, float, int], EvidenceCheck]


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


def _effective_class_threshold(policy: GatePolicy, label: str) -> float:
    """The confidence the model needs to decide ``label`` (infinity: never)."""
    if label not in policy.class_thresholds:
        return policy.confidence_threshold
    rule = policy.class_thresholds[label]
    return math.inf if rule is None else float(rule)


def loosened_fields(old: GatePolicy, new: GatePolicy) -> tuple[str, ...]:
    """The policy fields whose new value guards automated decisions less than the old."""
    found = [name for name in HIGHER_IS_STRICTER if getattr(new, name) < getattr(old, name)]
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
    min_evidence = max(old.min_evidence, new.min_evidence)
    judged = evidence(new.level, target_accuracy, min_evidence)
    floor_fields = ("target_accuracy", "min_evidence", "audit_rate") if raising else loosened
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
        )

    if not problems:
        return decided(allowed=True, overridden=False, refusal=None)

    if raising:
        what = f"cannot raise the level to {new.level.value}"
    else:
        what = f"cannot loosen {', '.join(loosened)} at {new.level.value}"
    if loosened:
        what += (
            f" (judged against the stricter targets: accuracy {target_accuracy:g}, "
            f"{min_evidence} labels)"
        )
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
