"""The automation read models as plain JSON-shaped data, for the API, the page and the log.

The shapes here are the public contract of ``GET .../automation/``, ``.../evidence/`` and
``.../threshold/`` (rendered by ``automation.serializers``) and of the evidence recorded
in the audit log, so they change only together with docs/api.md. Nothing here reads the
database or decides anything: it formats what ``selectors`` read and ``services`` judged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypedDict

from automation.selectors import (
    UNBIASED_REASONS,
    AuditWindow,
    AutomationRate,
    LabelledPrediction,
    VersionEvidence,
)
from decisions.stats import clopper_pearson, cohen_kappa

if TYPE_CHECKING:
    from automation.models import Alert, LevelChange
    from automation.services import AutomationStatus, LevelEvidence, ThresholdAdvice

DISPLAY_CONFIDENCE = 0.95

BIASED_NOTE = "low-confidence and class-rule reviews: the hard cases, not evidence"


class IntervalView(TypedDict):
    estimate: float | None
    low: float
    high: float
    successes: int
    n: int
    confidence: float


def interval_view(successes: int, n: int, confidence: float = DISPLAY_CONFIDENCE) -> IntervalView:
    """An exact two-sided interval as plain data (estimate None when nothing was seen)."""
    interval = clopper_pearson(successes, n, confidence)
    return {
        "estimate": interval.estimate if n else None,
        "low": interval.low,
        "high": interval.high,
        "successes": successes,
        "n": n,
        "confidence": confidence,
    }


# --- Evidence per model version -----------------------------------------------------------


class ClassIntervalView(TypedDict):
    label: str
    precision: IntervalView
    recall: IntervalView


class UnbiasedEvidenceView(TypedDict):
    overall: IntervalView
    kappa: float | None
    per_class: list[ClassIntervalView]
    sources: dict[str, int]


class AuditEvidenceView(TypedDict):
    overall: IntervalView
    per_level: dict[str, IntervalView]


class BiasedEvidenceView(TypedDict):
    overall: IntervalView
    per_class: list[ClassIntervalView]
    note: str


class VersionEvidenceView(TypedDict):
    model_version: str
    role: str | None
    unbiased: UnbiasedEvidenceView
    audit: AuditEvidenceView
    biased: BiasedEvidenceView


def _accuracy(pairs: Sequence[LabelledPrediction]) -> IntervalView:
    return interval_view(sum(p.correct for p in pairs), len(pairs))


def _kappa(pairs: Sequence[LabelledPrediction]) -> float | None:
    if not pairs:
        return None
    return cohen_kappa([p.predicted for p in pairs], [p.human_label for p in pairs])


def _per_class(
    pairs: Sequence[LabelledPrediction], labels: Iterable[str]
) -> list[ClassIntervalView]:
    """Per label: how often the model is right when it says it, and finds it when true."""
    said: dict[str, list[bool]] = defaultdict(list)
    truly: dict[str, list[bool]] = defaultdict(list)
    for pair in pairs:
        said[pair.predicted].append(pair.correct)
        truly[pair.human_label].append(pair.correct)
    return [
        {
            "label": label,
            "precision": interval_view(sum(said[label]), len(said[label])),
            "recall": interval_view(sum(truly[label]), len(truly[label])),
        }
        for label in labels
    ]


def _sources(pairs: Iterable[LabelledPrediction]) -> dict[str, int]:
    counts = {reason: 0 for reason in sorted(UNBIASED_REASONS)}
    for pair in pairs:
        counts[pair.review_reason] += 1
    return counts


def version_evidence_view(
    versions: Sequence[VersionEvidence], labels: Sequence[str]
) -> list[VersionEvidenceView]:
    """Per version: ``unbiased`` accuracy with its exact 95% interval overall and per
    class, and Cohen's kappa between model and humans; ``audit``: the accuracy of the
    automated decisions it made; ``biased``: the hard cases, for error analysis."""
    return [
        {
            "model_version": version.model_version,
            "role": version.role,
            "unbiased": {
                "overall": _accuracy(version.unbiased),
                "kappa": _kappa(version.unbiased),
                "per_class": _per_class(version.unbiased, labels),
                "sources": _sources(version.unbiased),
            },
            "audit": {
                "overall": interval_view(*version.audited_overall),
                "per_level": {
                    level: interval_view(*counts) for level, counts in version.audited.items()
                },
            },
            "biased": {
                "overall": _accuracy(version.biased),
                "per_class": _per_class(version.biased, labels),
                "note": BIASED_NOTE,
            },
        }
        for version in versions
    ]


# --- The gate and the step down -------------------------------------------------------------


class EvidenceView(TypedDict):
    level: str
    model_version: str | None
    n: int
    successes: int
    accuracy: float | None
    interval: IntervalView
    sources: dict[str, int]
    since: str | None
    sufficient: bool
    reason: str
    lower_bound: float
    target_accuracy: float
    min_evidence: int
    confidence: float
    labels_needed: int | None
    guarantee: str
    target_error: float | None
    calibrated_threshold: float | None
    calibration_method: str | None
    class_thresholds: dict[str, float | None] | None
    calibration_n: int | None
    expected_automation_rate: float | None
    auto_error_rate: float | None
    auto_error_upper_bound: float | None


def evidence_view(level_evidence: LevelEvidence) -> EvidenceView:
    """The gate's labels for one level and its judgement (also recorded in the audit log)."""
    evidence, judgement = level_evidence.evidence, level_evidence.judgement
    partial = level_evidence.partial
    successes, n = evidence.successes, evidence.n
    return {
        "level": evidence.level.value,
        "model_version": evidence.model_version.tag if evidence.model_version else None,
        "n": n,
        "successes": successes,
        "accuracy": successes / n if n else None,
        "interval": interval_view(successes, n),
        "sources": _sources(evidence.pairs),
        "since": evidence.since.created_at.isoformat() if evidence.since else None,
        "sufficient": level_evidence.sufficient,
        "reason": level_evidence.reason,
        "lower_bound": judgement.lower_bound,
        "target_accuracy": judgement.target_accuracy,
        "min_evidence": judgement.min_evidence,
        "confidence": judgement.confidence,
        "labels_needed": None if partial is not None else judgement.labels_needed,
        "guarantee": "error_among_automatic" if partial is not None else "overall_accuracy",
        "target_error": partial.target_error if partial else None,
        "calibrated_threshold": partial.calibrated_threshold if partial else None,
        "calibration_method": partial.method if partial else None,
        "class_thresholds": dict(partial.class_thresholds) if partial else None,
        "calibration_n": partial.n if partial else None,
        "expected_automation_rate": partial.expected_automation_rate if partial else None,
        "auto_error_rate": partial.error_rate if partial else None,
        "auto_error_upper_bound": partial.error_upper_bound if partial else None,
    }


class AuditWindowView(TypedDict):
    level: str
    model_version: str | None
    successes: int
    n: int
    size: int
    since: str | None
    accuracy: IntervalView


def audit_window_view(window: AuditWindow) -> AuditWindowView:
    return {
        "level": window.level,
        "model_version": window.model_version,
        "successes": window.successes,
        "n": window.n,
        "size": window.size,
        "since": window.since.isoformat() if window.since else None,
        "accuracy": interval_view(window.successes, window.n),
    }


class AutomationRateView(TypedDict):
    routed: int
    by_model: int
    rate: float | None
    since: str | None


def automation_rate_view(rate: AutomationRate) -> AutomationRateView:
    return {
        "routed": rate.routed,
        "by_model": rate.by_model,
        "rate": rate.rate,
        "since": rate.since.isoformat() if rate.since else None,
    }


class StepDownView(TypedDict):
    active: bool
    window: AuditWindowView
    would_step_down: bool
    quantity: str
    upper_bound: float
    target_accuracy: float
    target_error: float
    confidence: float
    min_samples: int
    reason: str


class PolicyView(TypedDict):
    level: str
    confidence_threshold: float
    class_thresholds: dict[str, float | None]
    audit_rate: float
    target_accuracy: float
    target_error: float
    min_evidence: int
    evidence_confidence: float


class OverviewView(TypedDict):
    workflow: str
    automation: PolicyView
    serving_model_version: str | None
    evidence: dict[str, EvidenceView]
    step_down: StepDownView
    automation_rate: AutomationRateView
    alerts: list[Alert]
    changes: list[LevelChange]


def overview_view(status: AutomationStatus) -> OverviewView:
    """``GET .../automation/`` and the top of the automation page."""
    workflow, step_down = status.workflow, status.step_down
    return {
        "workflow": workflow.slug,
        "automation": {
            "level": workflow.level,
            "confidence_threshold": workflow.confidence_threshold,
            "class_thresholds": workflow.class_thresholds or {},
            "audit_rate": workflow.audit_rate,
            "target_accuracy": workflow.target_accuracy,
            "target_error": workflow.target_error,
            "min_evidence": workflow.min_evidence,
            "evidence_confidence": workflow.evidence_confidence,
        },
        "serving_model_version": status.serving_model_version,
        "evidence": {level.value: evidence_view(found) for level, found in status.evidence.items()},
        "step_down": {
            "active": status.automated,
            "window": audit_window_view(step_down.window),
            "would_step_down": status.automated and step_down.verdict.step_down,
            "quantity": step_down.verdict.quantity,
            "upper_bound": step_down.verdict.upper_bound,
            "target_accuracy": step_down.verdict.target_accuracy,
            "target_error": workflow.target_error,
            "confidence": step_down.confidence,
            "min_samples": step_down.min_samples,
            "reason": step_down.verdict.reason,
        },
        "automation_rate": automation_rate_view(status.automation_rate),
        "alerts": list(status.alerts),
        "changes": list(status.changes),
    }


class OverviewAfterChangeView(OverviewView):
    change: LevelChange


def overview_after_change_view(
    status: AutomationStatus, change: LevelChange
) -> OverviewAfterChangeView:
    """The overview after ``change`` was made, with the change itself."""
    return {**overview_view(status), "change": change}


# --- The threshold recommendation -----------------------------------------------------------


class CurvePointView(TypedDict):
    threshold: float
    automation_rate: float
    n_auto: int
    errors: int
    error_rate: float
    error_upper_bound: float


class RecommendationView(TypedDict):
    threshold: float | None
    expected_automation_rate: float
    error_rate: float
    error_upper_bound: float
    reason: str


class CurrentThresholdView(TypedDict):
    threshold: float
    point: CurvePointView | None


class ClassHintView(TypedDict):
    label: str
    n: int
    threshold: float | None
    expected_share: float
    reason: str
    labels_needed: int
    pooled: bool


class CostView(TypedDict):
    threshold: float | None
    calibrated_threshold: float | None
    automation_rate: float
    error_rate: float
    cost_per_case: float
    human_only_cost_per_case: float
    savings_per_case: float
    savings_per_1000_cases: float
    savings_share: float
    review_cost: float
    error_cost: float
    class_error_costs: dict[str, float]
    audit_rate: float
    reason: str


class ThresholdReportView(TypedDict):
    model_version: str | None
    target_error: float
    confidence: float
    n_labelled: int
    since: str | None
    recommendation: RecommendationView
    current: CurrentThresholdView
    curve: list[CurvePointView]
    per_class: list[ClassHintView]
    cost: CostView | None


def threshold_report_view(advice: ThresholdAdvice) -> ThresholdReportView:
    """``GET .../threshold/``: the recommendation, the curve behind it, per-class hints."""
    report = advice.report
    curve: list[CurvePointView] = [
        {
            "threshold": point.threshold,
            "automation_rate": point.automation_rate,
            "n_auto": point.n_auto,
            "errors": point.errors,
            "error_rate": point.error_rate,
            "error_upper_bound": point.error_upper_bound,
        }
        for point in report.curve
    ]
    current = next(
        (p for p in curve if abs(p["threshold"] - report.current_threshold) < 1e-9), None
    )
    recommendation = report.recommendation
    return {
        "model_version": advice.model_version,
        "target_error": report.target_error,
        "confidence": report.confidence,
        "n_labelled": report.n_labelled,
        "since": advice.since.isoformat() if advice.since else None,
        "recommendation": {
            "threshold": recommendation.threshold,
            "expected_automation_rate": recommendation.expected_automation_rate,
            "error_rate": recommendation.error_rate,
            "error_upper_bound": recommendation.error_upper_bound,
            "reason": recommendation.reason,
        },
        "current": {"threshold": report.current_threshold, "point": current},
        "curve": curve,
        "per_class": [
            {
                "label": hint.label,
                "n": hint.n,
                "threshold": hint.threshold,
                "expected_share": hint.expected_share,
                "reason": hint.reason,
                "labels_needed": hint.labels_needed,
                "pooled": hint.pooled,
            }
            for hint in report.per_class
        ],
        "cost": None
        if advice.cost is None
        else {
            "threshold": advice.cost.threshold,
            "calibrated_threshold": advice.cost.calibrated_threshold,
            "automation_rate": advice.cost.automation_rate,
            "error_rate": advice.cost.error_rate,
            "cost_per_case": advice.cost.cost_per_case,
            "human_only_cost_per_case": advice.cost.human_only_cost_per_case,
            "savings_per_case": advice.cost.savings_per_case,
            "savings_per_1000_cases": 1000 * advice.cost.savings_per_case,
            "savings_share": advice.cost.savings_share,
            "review_cost": advice.cost.review_cost,
            "error_cost": advice.cost.error_cost,
            "class_error_costs": dict(advice.cost.class_error_costs),
            "audit_rate": advice.cost.audit_rate,
            "reason": advice.cost.reason,
        },
    }
