"""The routing decision: what happens to one case, as a pure function.

No ORM, no settings, no clock, no randomness of its own: the caller passes the
policy, what the model said (or that it could not say), and the case's audit draw,
a number in [0, 1) fixed per case so that a retried case routes the same way.

The table this implements (docs/architecture.md, "Automation levels"):

=============  ==========  =============================  ======================
level          model runs  who decides                    suggestion to reviewer
=============  ==========  =============================  ======================
human_only     no          a human                        -
shadow         yes         a human                        never (no bias)
assistance     yes         a human                        yes
partial        yes         model if confident, else human yes, on reviewed cases
full           yes         the model                      -
=============  ==========  =============================  ======================

In ``partial`` and ``full`` a share ``audit_rate`` of model-decided cases also goes
to a human, blind. A per-class rule overrides the global threshold for the model's
top label: a number is that class's own threshold (applied in ``partial`` and
``full``), ``None`` means the class is never decided by the model. A case the model
could not score always goes to a human, whatever the level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Level(StrEnum):
    HUMAN_ONLY = "human_only"
    SHADOW = "shadow"
    ASSISTANCE = "assistance"
    PARTIAL = "partial"
    FULL = "full"


LEVEL_ORDER: tuple[Level, ...] = (
    Level.HUMAN_ONLY,
    Level.SHADOW,
    Level.ASSISTANCE,
    Level.PARTIAL,
    Level.FULL,
)
AUTOMATED_LEVELS = frozenset({Level.PARTIAL, Level.FULL})


def level_rank(level: Level | str) -> int:
    return LEVEL_ORDER.index(Level(level))


class ReviewReason(StrEnum):
    HUMAN_ONLY = "human_only"
    SHADOW = "shadow"
    ASSISTANCE = "assistance"
    LOW_CONFIDENCE = "low_confidence"
    CLASS_RULE = "class_rule"
    AUDIT = "audit"
    MODEL_ERROR = "model_error"


@dataclass(frozen=True)
class Policy:
    level: Level
    confidence_threshold: float
    audit_rate: float = 0.0
    class_thresholds: Mapping[str, float | None] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", Level(self.level))
        object.__setattr__(self, "class_thresholds", MappingProxyType(dict(self.class_thresholds)))
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise ValueError("confidence_threshold must be within [0, 1]")
        if not 0.0 <= self.audit_rate <= 1.0:
            raise ValueError("audit_rate must be within [0, 1]")

    def __hash__(self) -> int:
        return hash(
            (
                self.level,
                self.confidence_threshold,
                self.audit_rate,
                tuple(sorted(self.class_thresholds.items())),
            )
        )


@dataclass(frozen=True)
class ModelOpinion:
    """The deciding model version's top label and its confidence for one case."""

    label: str
    confidence: float


@dataclass(frozen=True)
class RoutingDecision:
    """What to do with one case.

    ``decide_by_model`` and ``send_to_review`` are both true for an audited case: the
    model's decision stands, and a human labels the case blind to measure it.
    """

    decide_by_model: bool
    send_to_review: bool
    reason: ReviewReason | None
    show_suggestion: bool
    threshold: float | None
    auto_label: str | None = None

    @property
    def is_audit(self) -> bool:
        return self.reason is ReviewReason.AUDIT


def model_runs(level: Level | str) -> bool:
    """Whether the model is run at all at this level (it is not in ``human_only``)."""
    return Level(level) is not Level.HUMAN_ONLY


def _review(reason: ReviewReason, *, show: bool, threshold: float | None) -> RoutingDecision:
    return RoutingDecision(
        decide_by_model=False,
        send_to_review=True,
        reason=reason,
        show_suggestion=show,
        threshold=threshold,
    )


def route(*, policy: Policy, opinion: ModelOpinion | None, audit_draw: float) -> RoutingDecision:
    """Route one case.

    ``opinion`` is None when the model was not run or failed; at a level where the
    model runs that means the case is sent to a human with ``model_error``.
    A case counts as confident when its confidence is *at or above* the threshold.
    """
    if not 0.0 <= audit_draw < 1.0:
        raise ValueError("audit_draw must be within [0, 1)")
    level = policy.level
    if level is Level.HUMAN_ONLY:
        return _review(ReviewReason.HUMAN_ONLY, show=False, threshold=None)
    if opinion is None:
        return _review(ReviewReason.MODEL_ERROR, show=False, threshold=None)
    if level is Level.SHADOW:
        return _review(ReviewReason.SHADOW, show=False, threshold=None)
    if level is Level.ASSISTANCE:
        return _review(ReviewReason.ASSISTANCE, show=True, threshold=None)

    if opinion.label in policy.class_thresholds:
        class_threshold = policy.class_thresholds[opinion.label]
        if class_threshold is None or opinion.confidence < class_threshold:
            return _review(ReviewReason.CLASS_RULE, show=True, threshold=class_threshold)
        threshold: float | None = class_threshold
    elif level is Level.PARTIAL:
        threshold = policy.confidence_threshold
        if opinion.confidence < threshold:
            return _review(ReviewReason.LOW_CONFIDENCE, show=True, threshold=threshold)
    else:
        threshold = None

    audited = audit_draw < policy.audit_rate
    return RoutingDecision(
        decide_by_model=True,
        send_to_review=audited,
        reason=ReviewReason.AUDIT if audited else None,
        show_suggestion=False,
        threshold=threshold,
        auto_label=opinion.label,
    )
