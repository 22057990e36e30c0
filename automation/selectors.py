"""Reads for the automation evidence: model predictions paired with human labels.

Which human labels count for what (docs/decisions.md D8, D9):

* ``shadow`` and ``assistance`` reviews label every case the model saw: an unbiased
  sample of the whole stream.
* ``audit`` labels a random share of the model-decided cases at the level the case was
  routed at. An audit at ``full`` is a sample of the whole stream too; an audit at
  ``partial`` only of the confident cases that partial automation decides. So an audit
  counts as evidence for its own level and the levels below it, never above.
* ``low_confidence`` and ``class_rule`` reviews are the hard cases by construction:
  shown for error analysis, never counted as evidence.
* Gold cases measure reviewers and are left out everywhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Q

from automation.conf import automation_setting
from automation.models import Alert, AlertState, LevelChange
from automation.routing import AUTOMATED_LEVELS, Level, ReviewReason, level_rank
from automation.stats import (
    Interval,
    StepDownVerdict,
    calibrate_threshold,
    clopper_pearson,
    cohen_kappa,
    evidence_for_level,
    labels_needed_at_accuracy,
    risk_coverage_curve,
    step_down_check,
)
from modelops.models import ModelVersion
from modelops.selectors import deployments_active, serving_version
from workflows.models import Case, DecisionSource, Prediction, Workflow

WHOLE_STREAM_REASONS = frozenset({ReviewReason.SHADOW.value, ReviewReason.ASSISTANCE.value})
UNBIASED_REASONS = WHOLE_STREAM_REASONS | {ReviewReason.AUDIT.value}
BIASED_REASONS = frozenset({ReviewReason.LOW_CONFIDENCE.value, ReviewReason.CLASS_RULE.value})

DISPLAY_CONFIDENCE = 0.95
CURVE_GRID: tuple[float, ...] = tuple(k / 100 for k in range(101))


@dataclass(frozen=True)
class LabelledPrediction:
    """One model prediction on a case a human has labelled."""

    model_version_id: int
    role: str
    predicted: str
    confidence: float
    human_label: str
    level: str
    review_reason: str
    labelled_at: datetime | None = None

    @property
    def correct(self) -> bool:
        return self.predicted == self.human_label


def labelled_predictions(
    *,
    workflow: Workflow,
    model_version_id: int | None = None,
    limit: int | None = None,
    labelled_after: datetime | None = None,
) -> list[LabelledPrediction]:
    """Predictions on human-labelled cases, newest first.

    Every case a human labelled counts: shadow, assistance, low-confidence reviews and
    audits of model-decided cases. Gold cases are excluded (they measure reviewers).
    ``labelled_after`` keeps only labels given strictly after that moment.
    """
    qs = (
        Prediction.objects.filter(case__workflow=workflow, case__is_gold=False)
        .exclude(case__human_label="")
        .order_by("-case__labelled_at", "-id")
    )
    if model_version_id is not None:
        qs = qs.filter(model_version_id=model_version_id)
    if labelled_after is not None:
        qs = qs.filter(case__labelled_at__gt=labelled_after)
    rows = qs.values_list(
        "model_version_id",
        "role",
        "label",
        "confidence",
        F("case__human_label"),
        F("case__routed_level"),
        F("case__review_reason"),
        F("case__labelled_at"),
    )
    if limit is not None:
        rows = rows[:limit]
    return [LabelledPrediction(*row) for row in rows]


def counts_as_evidence_for(pair: LabelledPrediction, level: Level | str) -> bool:
    """Whether this label is an unbiased sample of the cases ``level`` would decide."""
    if pair.review_reason in WHOLE_STREAM_REASONS:
        return True
    if pair.review_reason == ReviewReason.AUDIT.value and pair.level:
        return level_rank(pair.level) >= level_rank(level)
    return False


# --- The audit log and its windows ---------------------------------------------------


def level_changes(*, workflow: Workflow, limit: int = 50) -> list[LevelChange]:
    return list(workflow.level_changes.select_related("actor")[:limit])


def last_level_change(*, workflow: Workflow) -> LevelChange | None:
    """The newest change that moved the level (not only a threshold or rate)."""
    return (
        LevelChange.objects.filter(workflow=workflow)
        .exclude(from_level=F("to_level"))
        .order_by("-created_at", "-id")
        .first()
    )


def last_step_down(*, workflow: Workflow) -> LevelChange | None:
    """The newest automatic step down: labels from before it no longer count to go up."""
    return (
        LevelChange.objects.filter(workflow=workflow, automatic=True)
        .exclude(from_level=F("to_level"))
        .order_by("-created_at", "-id")
        .first()
    )


def last_raise(*, workflow: Workflow) -> LevelChange | None:
    """The newest change that moved the level up."""
    for change in (
        LevelChange.objects.filter(workflow=workflow)
        .exclude(from_level=F("to_level"))
        .order_by("-created_at", "-id")[:200]
    ):
        if change.from_level and change.to_level and level_rank(change.to_level) > level_rank(
            change.from_level
        ):
            return change
    return None


def alerts_of(*, workflow: Workflow, state: str | None = None, limit: int = 100) -> list[Alert]:
    qs = Alert.objects.filter(workflow=workflow)
    if state:
        qs = qs.filter(state=state)
    return list(qs.order_by("-created_at", "-id")[:limit])


def alerts_firing(*, workflow: Workflow, kind: str | None = None) -> list[Alert]:
    qs = Alert.objects.filter(workflow=workflow, state=AlertState.FIRING)
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("-created_at", "-id"))


# --- Intervals --------------------------------------------------------------------------


def interval_view(successes: int, n: int, confidence: float = DISPLAY_CONFIDENCE) -> dict[str, Any]:
    """An exact two-sided interval as plain data (estimate None when nothing was seen)."""
    interval: Interval = clopper_pearson(successes, n, confidence)
    return {
        "estimate": interval.estimate if n else None,
        "low": interval.low,
        "high": interval.high,
        "successes": successes,
        "n": n,
        "confidence": confidence,
    }


def _accuracy(pairs: Sequence[LabelledPrediction]) -> dict[str, Any]:
    return interval_view(sum(p.correct for p in pairs), len(pairs))


def _kappa(pairs: Sequence[LabelledPrediction]) -> float | None:
    if not pairs:
        return None
    return cohen_kappa([p.predicted for p in pairs], [p.human_label for p in pairs])


def _per_class(pairs: Sequence[LabelledPrediction], labels: Iterable[str]) -> list[dict[str, Any]]:
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


# --- Evidence per model version ---------------------------------------------------------


def evidence_by_version(*, workflow: Workflow) -> list[dict[str, Any]]:
    """For every model version with labelled predictions in this workflow, newest first.

    ``unbiased``: accuracy with its exact 95% interval overall and per class, and Cohen's
    kappa between model and humans, from shadow, assistance and audit labels.
    ``audit``: the accuracy of the automated decisions this version made, from the blind
    audit sample. ``biased``: low-confidence and class-rule reviews, for error analysis.
    """
    pairs = labelled_predictions(
        workflow=workflow, limit=automation_setting("LOOPGATE_EVIDENCE_MAX_LABELS")
    )
    by_version: dict[int, list[LabelledPrediction]] = defaultdict(list)
    for pair in pairs:
        by_version[pair.model_version_id].append(pair)
    deployed = deployments_active(workflow_id=workflow.pk)
    active = {d.model_version_id: role for role, d in deployed.items()}
    versions = {v.pk: v for v in ModelVersion.objects.filter(pk__in=set(by_version) | set(active))}
    audits = _audited_decisions_by_version(workflow=workflow)
    result = []
    for version_id in sorted(versions, key=lambda pk: (pk not in active, -pk)):
        version_pairs = by_version.get(version_id, [])
        unbiased = [p for p in version_pairs if p.review_reason in UNBIASED_REASONS]
        biased = [p for p in version_pairs if p.review_reason in BIASED_REASONS]
        sources = {reason: 0 for reason in sorted(UNBIASED_REASONS)}
        for pair in unbiased:
            sources[pair.review_reason] += 1
        decided = audits.get(version_id, {})
        result.append(
            {
                "model_version": versions[version_id].tag,
                "role": active.get(version_id),
                "unbiased": {
                    "overall": _accuracy(unbiased),
                    "kappa": _kappa(unbiased),
                    "per_class": _per_class(unbiased, workflow.labels),
                    "sources": sources,
                },
                "audit": {
                    "overall": interval_view(*decided.get("all", (0, 0))),
                    "per_level": {
                        level: interval_view(*counts)
                        for level, counts in decided.items()
                        if level != "all"
                    },
                },
                "biased": {
                    "overall": _accuracy(biased),
                    "per_class": _per_class(biased, workflow.labels),
                    "note": "low-confidence and class-rule reviews: the hard cases, not evidence",
                },
            }
        )
    return result


def _audited_decisions_by_version(*, workflow: Workflow) -> dict[int, dict[str, tuple[int, int]]]:
    """(right, audited) of model decisions per deciding version, overall and per level."""
    rows = (
        Case.objects.filter(
            workflow=workflow,
            is_gold=False,
            review_reason=ReviewReason.AUDIT.value,
            decision_source=DecisionSource.MODEL,
        )
        .exclude(human_label="")
        .values_list("decision_model_version_id", "routed_level")
        .annotate(
            n=Count("id"),
            right=Count("id", filter=Q(decision_label=F("human_label"))),
        )
    )
    result: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for version_id, level, n, right in rows:
        if version_id is None:
            continue
        before = result[version_id].get(level, (0, 0))
        result[version_id][level] = (before[0] + right, before[1] + n)
        total = result[version_id].get("all", (0, 0))
        result[version_id]["all"] = (total[0] + right, total[1] + n)
    return result


# --- The evidence gate -------------------------------------------------------------------


@dataclass(frozen=True)
class GateEvidence:
    """The labels that count toward raising the workflow to ``level``."""

    level: Level
    model_version: ModelVersion | None
    since: LevelChange | None
    pairs: tuple[LabelledPrediction, ...]

    @property
    def successes(self) -> int:
        return sum(p.correct for p in self.pairs)

    @property
    def n(self) -> int:
        return len(self.pairs)

    def sources(self) -> dict[str, int]:
        counts = {reason: 0 for reason in sorted(UNBIASED_REASONS)}
        for pair in self.pairs:
            counts[pair.review_reason] += 1
        return counts


def gate_evidence(*, workflow: Workflow, level: Level | str) -> GateEvidence:
    """The serving version's unbiased labels for ``level``, after the last step down.

    Hysteresis: once the workflow was stepped down automatically, only labels given
    after that step down count, so going back up needs fresh evidence.
    """
    level = Level(level)
    version = serving_version(workflow_id=workflow.pk)
    since = last_step_down(workflow=workflow)
    if version is None:
        return GateEvidence(level=level, model_version=None, since=since, pairs=())
    pairs = labelled_predictions(
        workflow=workflow,
        model_version_id=version.pk,
        labelled_after=since.created_at if since else None,
        limit=automation_setting("LOOPGATE_EVIDENCE_MAX_LABELS"),
    )
    return GateEvidence(
        level=level,
        model_version=version,
        since=since,
        pairs=tuple(p for p in pairs if counts_as_evidence_for(p, level)),
    )


# --- The step-down window ------------------------------------------------------------------


@dataclass(frozen=True)
class AuditWindow:
    """The newest audited, model-decided cases of one version at one level."""

    level: str
    model_version: str | None
    successes: int
    n: int
    size: int
    since: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "model_version": self.model_version,
            "successes": self.successes,
            "n": self.n,
            "size": self.size,
            "since": self.since.isoformat() if self.since else None,
            "accuracy": interval_view(self.successes, self.n),
        }


def audit_window(*, workflow: Workflow, size: int | None = None) -> AuditWindow:
    """The audits the automatic step down judges, newest ``size`` of them.

    Only cases the serving version decided while routed at the current level, labelled
    after the level last changed: a fresh window per level, so the audits that caused a
    step down do not at once cause the next one, and audits of cases routed under an
    earlier level are not judged against this one.
    """
    size = size or automation_setting("LOOPGATE_STEP_DOWN_WINDOW")
    version = serving_version(workflow_id=workflow.pk)
    changed = last_level_change(workflow=workflow)
    since = changed.created_at if changed else None
    if version is None:
        return AuditWindow(workflow.level, None, 0, 0, size, since)
    qs = Case.objects.filter(
        workflow=workflow,
        is_gold=False,
        review_reason=ReviewReason.AUDIT.value,
        decision_source=DecisionSource.MODEL,
        decision_model_version=version,
        routed_level=workflow.level,
    ).exclude(human_label="")
    if since is not None:
        qs = qs.filter(labelled_at__gt=since)
    rows = list(
        qs.order_by("-labelled_at", "-id").values_list("decision_label", "human_label")[:size]
    )
    right = sum(1 for decided, truth in rows if decided == truth)
    return AuditWindow(workflow.level, version.tag, right, len(rows), size, since)


def automation_rate_since_level_change(*, workflow: Workflow) -> dict[str, Any]:
    """Share of cases routed at the current level that the model decided."""
    changed = last_level_change(workflow=workflow)
    qs = Case.objects.filter(workflow=workflow, routed_level=workflow.level, is_gold=False)
    if changed is not None:
        qs = qs.filter(created_at__gt=changed.created_at)
    counts = qs.aggregate(
        routed=Count("id"), by_model=Count("id", filter=Q(decision_source=DecisionSource.MODEL))
    )
    routed, by_model = counts["routed"], counts["by_model"]
    return {
        "routed": routed,
        "by_model": by_model,
        "rate": by_model / routed if routed else None,
        "since": changed.created_at.isoformat() if changed else None,
    }


# --- Output drift ---------------------------------------------------------------------------


def drift_samples(*, workflow: Workflow) -> tuple[list[float], list[float], LevelChange | None]:
    """Serving-version confidences: before the last raise (reference) and the newest.

    The reference is what the level was earned on: the ``LOOPGATE_DRIFT_WINDOW``
    predictions made just before the level was last raised. The recent sample is the
    newest as many predictions made after it. Empty lists when there is no such raise.
    """
    size = automation_setting("LOOPGATE_DRIFT_WINDOW")
    version = serving_version(workflow_id=workflow.pk)
    raised = last_raise(workflow=workflow)
    if version is None or raised is None:
        return [], [], raised
    qs = Prediction.objects.filter(case__workflow=workflow, model_version=version)
    reference = list(
        qs.filter(created_at__lte=raised.created_at)
        .order_by("-created_at", "-id")
        .values_list("confidence", flat=True)[:size]
    )
    recent = list(
        qs.filter(created_at__gt=raised.created_at)
        .order_by("-created_at", "-id")
        .values_list("confidence", flat=True)[:size]
    )
    return reference, recent, raised


# --- Threshold recommendation ----------------------------------------------------------------


def calibration_pairs(
    *, workflow: Workflow
) -> tuple[ModelVersion | None, list[LabelledPrediction]]:
    """The serving version's labels that sample the whole stream, after the last step down.

    Shadow and assistance reviews and audits at ``full``: a threshold is calibrated on
    cases of every confidence. Audits at ``partial`` are left out (they only cover cases
    above the threshold in force), as are the biased low-confidence reviews.
    """
    evidence = gate_evidence(workflow=workflow, level=Level.FULL)
    return evidence.model_version, list(evidence.pairs)


def threshold_report(
    *, workflow: Workflow, target_error: float, confidence: float
) -> dict[str, Any]:
    """The calibrated threshold for ``target_error``, the curve behind it, per-class hints.

    ``recommendation`` is ``automation.stats.calibrate_threshold`` over the calibration
    pairs (its guarantee: with probability >= ``confidence`` the true error among
    auto-decided cases is below ``target_error``). ``curve`` is the risk-coverage curve
    on a 0.01 grid, whose per-point bounds are *not* simultaneous (for the picture only).
    ``per_class`` calibrates each label on the cases the model gave that label: a
    suggestion for that label's own threshold.
    """
    version, pairs = calibration_pairs(workflow=workflow)
    confidences = [p.confidence for p in pairs]
    correct = [p.correct for p in pairs]
    recommendation = calibrate_threshold(
        confidences, correct, target_error=target_error, confidence=confidence
    )
    grid = sorted(set(CURVE_GRID) | {round(workflow.confidence_threshold, 6)}, reverse=True)
    curve = [
        {
            "threshold": point.threshold,
            "automation_rate": point.automation_rate,
            "n_auto": point.n_auto,
            "errors": point.errors,
            "error_rate": point.error_rate,
            "error_upper_bound": point.error_upper_bound,
        }
        for point in risk_coverage_curve(
            confidences, correct, confidence=confidence, thresholds=grid
        )
    ]
    current = next(
        (p for p in curve if abs(p["threshold"] - workflow.confidence_threshold) < 1e-9), None
    )
    per_class = []
    for label in workflow.labels:
        said = [p for p in pairs if p.predicted == label]
        hint = calibrate_threshold(
            [p.confidence for p in said],
            [p.correct for p in said],
            target_error=target_error,
            confidence=confidence,
        )
        per_class.append(
            {
                "label": label,
                "n": len(said),
                "threshold": hint.threshold,
                "expected_share": (
                    hint.expected_automation_rate * len(said) / len(pairs) if pairs else 0.0
                ),
                "reason": hint.reason,
            }
        )
    since = last_step_down(workflow=workflow)
    return {
        "model_version": version.tag if version else None,
        "target_error": target_error,
        "confidence": confidence,
        "n_labelled": len(pairs),
        "since": since.created_at.isoformat() if since else None,
        "recommendation": {
            "threshold": recommendation.threshold,
            "expected_automation_rate": recommendation.expected_automation_rate,
            "error_rate": recommendation.error_rate,
            "error_upper_bound": recommendation.error_upper_bound,
            "reason": recommendation.reason,
        },
        "current": {"threshold": workflow.confidence_threshold, "point": current},
        "curve": curve,
        "per_class": per_class,
    }


def gate_summary(evidence: GateEvidence) -> dict[str, Any]:
    """Plain data about the gate's labels (the verdict is added by the service)."""
    successes, n = evidence.successes, evidence.n
    return {
        "level": evidence.level.value,
        "model_version": evidence.model_version.tag if evidence.model_version else None,
        "n": n,
        "successes": successes,
        "accuracy": successes / n if n else None,
        "interval": interval_view(successes, n),
        "sources": evidence.sources(),
        "since": evidence.since.created_at.isoformat() if evidence.since else None,
    }


def evidence_for_workflow(
    *,
    workflow: Workflow,
    level: Level | str = Level.PARTIAL,
    target_accuracy: float | None = None,
    min_evidence: int | None = None,
) -> dict[str, Any]:
    """The serving version's accuracy on unbiased human labels for ``level``, against the target.

    Counted: shadow and assistance reviews and audits at ``level`` or above, given after
    the last automatic step down (``gate_evidence``). ``target_accuracy`` and
    ``min_evidence`` default to the workflow's (a change is judged against the policy it
    creates). ``reason`` says what is missing when ``sufficient`` is false;
    ``labels_needed`` estimates how many labels would do at the accuracy seen so far
    (None when that accuracy cannot reach the target).
    """
    target = workflow.target_accuracy if target_accuracy is None else target_accuracy
    needed = workflow.min_evidence if min_evidence is None else min_evidence
    evidence = gate_evidence(workflow=workflow, level=level)
    summary = gate_summary(evidence)
    if evidence.model_version is None:
        return {
            **summary,
            "sufficient": False,
            "reason": "no serving model is deployed",
            "lower_bound": 0.0,
            "target_accuracy": target,
            "min_evidence": needed,
            "confidence": workflow.evidence_confidence,
            "labels_needed": None,
        }
    verdict = evidence_for_level(
        evidence.successes,
        evidence.n,
        target_accuracy=target,
        min_evidence=needed,
        confidence=workflow.evidence_confidence,
    )
    counted = "shadow and assistance reviews" + (
        " and audits at full automation"
        if Level(level) is Level.FULL
        else " and audits of automated decisions"
    )
    reason = f"{verdict.reason}; counted: {counted} of {evidence.model_version.tag}"
    if evidence.since is not None:
        reason += (
            f", labelled after the automatic step down of "
            f"{evidence.since.created_at:%Y-%m-%d %H:%M} UTC (fresh evidence only)"
        )
    labels_needed = None
    if not verdict.sufficient and evidence.n:
        labels_needed = labels_needed_at_accuracy(
            evidence.successes / evidence.n,
            target,
            confidence=workflow.evidence_confidence,
            min_evidence=needed,
        )
        if labels_needed is not None:
            reason += (
                f"; at the accuracy seen so far about {max(labels_needed - evidence.n, 0)} "
                f"more labels would do"
            )
    return {
        **summary,
        "sufficient": verdict.sufficient,
        "reason": reason,
        "lower_bound": verdict.lower_bound,
        "target_accuracy": verdict.target_accuracy,
        "min_evidence": verdict.min_evidence,
        "confidence": workflow.evidence_confidence,
        "labels_needed": labels_needed,
    }


def step_down_status(
    *, workflow: Workflow
) -> tuple[AuditWindow, StepDownVerdict, float, int]:
    """The audit window and what ``step_down_check`` says about it now.

    Returns (window, verdict, confidence, min_samples) with the settings in force.
    """
    window = audit_window(workflow=workflow)
    confidence = automation_setting("LOOPGATE_STEP_DOWN_CONFIDENCE")
    min_samples = automation_setting("LOOPGATE_STEP_DOWN_MIN_SAMPLES")
    verdict = step_down_check(
        window.successes,
        window.n,
        target_accuracy=workflow.target_accuracy,
        confidence=confidence,
        min_samples=min_samples,
    )
    return window, verdict, confidence, min_samples


def automation_overview(*, workflow: Workflow, changes: int = 20) -> dict[str, Any]:
    """Everything the automation page and ``GET .../automation/`` show at the top."""
    version = serving_version(workflow_id=workflow.pk)
    window, verdict, confidence, min_samples = step_down_status(workflow=workflow)
    automated = Level(workflow.level) in AUTOMATED_LEVELS
    return {
        "workflow": workflow.slug,
        "automation": {
            "level": workflow.level,
            "confidence_threshold": workflow.confidence_threshold,
            "class_thresholds": workflow.class_thresholds or {},
            "audit_rate": workflow.audit_rate,
            "target_accuracy": workflow.target_accuracy,
            "min_evidence": workflow.min_evidence,
            "evidence_confidence": workflow.evidence_confidence,
        },
        "serving_model_version": version.tag if version else None,
        "evidence": {
            level.value: evidence_for_workflow(workflow=workflow, level=level)
            for level in (Level.PARTIAL, Level.FULL)
        },
        "step_down": {
            "active": automated,
            "window": window.as_dict(),
            "would_step_down": automated and verdict.step_down,
            "upper_bound": verdict.upper_bound,
            "target_accuracy": verdict.target_accuracy,
            "confidence": confidence,
            "min_samples": min_samples,
            "reason": verdict.reason,
        },
        "automation_rate": automation_rate_since_level_change(workflow=workflow),
        "alerts": alerts_firing(workflow=workflow),
        "changes": level_changes(workflow=workflow, limit=changes),
    }
