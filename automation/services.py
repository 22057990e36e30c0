"""Writes for the automation policy. Every change is a LevelChange with reason and evidence.

Invariants:

* The workflow row is locked (``select_for_update``) for every policy change and every
  automatic check, so a change, a check and a second check on the same workflow queue
  behind each other; each re-reads the evidence under the lock.
* Every change a person makes goes through ``automation_update`` and the one rule in
  ``decisions.gate.judge_change``: moving up into ``partial`` or ``full``, or loosening
  a guarantee there, needs evidence (``evidence_for_workflow``) against the stricter of
  the old and new targets, within the floors; moving down is always allowed. A
  superuser's override of the gate is explicit and logged (``overridden=True``).
* The automatic step down moves one level at a time (full -> partial -> assistance),
  writes a LevelChange with ``automatic=True`` and its evidence, and raises an
  ``accuracy`` alert in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.types import User
from automation.conf import automation_setting, gate_floors
from automation.inputs import Costs
from automation.models import ACTIVE_ALERT_STATES, Alert, AlertKind, AlertState, LevelChange
from automation.presenters import audit_window_view, evidence_view, threshold_report_view
from automation.selectors import (
    UNBIASED_REASONS,
    AuditWindow,
    AutomationRate,
    GateEvidence,
    alerts_firing,
    audit_window,
    automation_rate_since_level_change,
    drift_samples,
    gate_evidence,
    level_changes,
)
from decisions.gate import (
    EvidenceCheck,
    EvidenceJudgement,
    GateDecision,
    GatePolicy,
    PartialJudgement,
    Refusal,
    Targets,
    evidence_judge,
    judge_change,
    partial_judge,
)
from decisions.routing import AUTOMATED_LEVELS, LEVEL_ORDER, Level, level_rank
from decisions.stats import (
    StepDownVerdict,
    confidence_drift,
    step_down_check,
    step_down_error_check,
)
from decisions.thresholds import (
    CostChoice,
    ScoredLabel,
    ThresholdReport,
    cost_aware_threshold,
    threshold_report,
)
from integrations.models import EventType
from integrations.services import alert_event_emit, event_emit
from kernel.errors import Conflict, Forbidden, InvalidInput
from modelops.selectors import serving_version
from workflows.models import Workflow

logger = logging.getLogger(__name__)

__all__ = [
    "POLICY_FIELDS",
    "UNBIASED_REASONS",
    "automation_check_all",
    "automation_check_queue",
    "automation_check_workflow",
    "automation_status",
    "automation_threshold_apply",
    "automation_update",
    "evidence_for_workflow",
    "gate_policy",
    "policy_snapshot",
    "step_down_status",
    "threshold_advice",
]

POLICY_FIELDS = (
    "level",
    "confidence_threshold",
    "class_thresholds",
    "audit_rate",
    "target_accuracy",
    "target_error",
    "min_evidence",
)

# The lowest level the automatic step down goes to: below it the model is not judged by
# audits any more (every case is reviewed), so there is nothing left to protect.
STEP_DOWN_FLOOR = Level.ASSISTANCE


def policy_snapshot(workflow: Workflow) -> dict[str, Any]:
    return {name: getattr(workflow, name) for name in POLICY_FIELDS}


def _validate_policy(workflow: Workflow, changes: dict[str, Any]) -> None:
    labels = set(workflow.labels)
    if "level" in changes and changes["level"] not in {v.value for v in Level}:
        raise InvalidInput(f"level: unknown level {changes['level']!r}", field="level")
    if "target_error" in changes:
        value = changes["target_error"]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0.0 < float(value) < 1.0
        ):
            raise InvalidInput(
                "target_error: must be a number strictly between 0 and 1", field="target_error"
            )
    for name in ("confidence_threshold", "audit_rate", "target_accuracy"):
        if name in changes:
            value = changes[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0.0 <= float(value) <= 1.0
            ):
                raise InvalidInput(f"{name}: must be a number within [0, 1]", field=name)
    if "min_evidence" in changes:
        value = changes["min_evidence"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput("min_evidence: must be a whole number >= 0", field="min_evidence")
    if "class_thresholds" in changes:
        rules = changes["class_thresholds"]
        if not isinstance(rules, dict):
            raise InvalidInput(
                "class_thresholds: must be an object of label to threshold or null",
                field="class_thresholds",
            )
        for label, value in rules.items():
            if label not in labels:
                raise InvalidInput(
                    f"class_thresholds: unknown label {label!r} (labels: {sorted(labels)})",
                    field="class_thresholds",
                )
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0.0 <= float(value) <= 1.0
            ):
                raise InvalidInput(
                    f"class_thresholds: {label!r} must be a number within [0, 1] or null",
                    field="class_thresholds",
                )


def _policy_write(
    *,
    workflow: Workflow,
    actor: User | None,
    reason: str,
    changes: dict[str, Any],
    evidence: dict[str, Any],
    automatic: bool,
    overridden: bool,
) -> LevelChange:
    """Apply ``changes`` and log them. Call holding the workflow's row lock."""
    before = policy_snapshot(workflow)
    for name, value in changes.items():
        setattr(workflow, name, value)
    workflow.save(update_fields=list(changes))
    after = policy_snapshot(workflow)
    change = LevelChange.objects.create(
        workflow=workflow,
        actor=actor if getattr(actor, "pk", None) else None,
        automatic=automatic,
        overridden=overridden,
        from_level=before["level"],
        to_level=after["level"],
        before=before,
        after=after,
        reason=reason,
        evidence=evidence,
    )
    if change.from_level != change.to_level:
        event_emit(
            workflow=workflow,
            type=EventType.LEVEL_CHANGED,
            payload={
                "level_change": {
                    "id": change.pk,
                    "from_level": change.from_level,
                    "to_level": change.to_level,
                    "automatic": change.automatic,
                    "overridden": change.overridden,
                    "reason": change.reason,
                    "actor": change.actor.get_username() if change.actor else None,
                    "created_at": change.created_at,
                }
            },
        )
    return change


# An alert fires once (a new row) and resolves once; a condition that returns fires a
# new alert. The row records both moves (created_at, resolved_at and resolution), so no
# separate event row is kept. Changed only by _alerts_resolve.
ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertState.FIRING: frozenset({AlertState.ACKNOWLEDGED, AlertState.RESOLVED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset(),
}


def _alerts_resolve(
    *, workflow: Workflow, kind: str, resolution: str, alert_ids: list[int] | None = None
) -> int:
    """Resolve the workflow's alerts of ``kind`` (those of ``alert_ids`` only, if given)
    that the table lets resolve: one conditional UPDATE. Returns how many."""
    from_states = [
        state for state, moves in ALERT_TRANSITIONS.items() if AlertState.RESOLVED in moves
    ]
    alerts = Alert.objects.filter(workflow=workflow, kind=kind, state__in=from_states)
    if alert_ids is not None:
        alerts = alerts.filter(pk__in=alert_ids)
    with transaction.atomic():
        resolved = list(alerts.select_for_update())
        if not resolved:
            return 0
        now = timezone.now()
        Alert.objects.filter(pk__in=[alert.pk for alert in resolved]).update(
            state=AlertState.RESOLVED, resolved_at=now, resolution=resolution
        )
        for alert in resolved:
            alert.state, alert.resolved_at, alert.resolution = AlertState.RESOLVED, now, resolution
            _alert_event(workflow=workflow, alert=alert, fired=False)
    return len(resolved)


def _alert_event(*, workflow: Workflow, alert: Alert, fired: bool) -> None:
    """``alert.fired`` / ``alert.resolved`` into the webhook outbox, in the transaction
    that changes the alert: the event exists if and only if the change commits (D90)."""
    alert_event_emit(workflow=workflow, alert=alert, fired=fired)


def _workflow_lock(workflow_id: int) -> Workflow | None:
    return Workflow.objects.select_for_update().filter(pk=workflow_id).first()


def gate_policy(workflow: Workflow, changes: dict[str, Any] | None = None) -> GatePolicy:
    """The workflow's policy as the gate sees it, with ``changes`` applied."""
    values = policy_snapshot(workflow) | (changes or {})
    return GatePolicy(
        level=values["level"],
        confidence_threshold=values["confidence_threshold"],
        audit_rate=values["audit_rate"],
        target_accuracy=values["target_accuracy"],
        min_evidence=values["min_evidence"],
        class_thresholds=values["class_thresholds"] or {},
        target_error=values["target_error"],
    )


# --- What the evidence says (reads, judged by the decision core) -------------------------


@dataclass(frozen=True)
class LevelEvidence:
    """The labels that count toward ``evidence.level`` and the gate's judgement of them.

    ``judgement`` is the overall-accuracy judgement (the rule of ``full``; shown for
    ``partial`` too); ``partial`` is the calibrated-threshold judgement, the rule of
    ``partial`` (None for ``full``). ``sufficient``/``reason`` are the level's own rule.
    """

    evidence: GateEvidence
    judgement: EvidenceJudgement
    partial: PartialJudgement | None = None

    @property
    def sufficient(self) -> bool:
        return self.partial.sufficient if self.partial is not None else self.judgement.sufficient

    @property
    def reason(self) -> str:
        return self.partial.reason if self.partial is not None else self.judgement.reason


def evidence_for_workflow(
    *,
    workflow: Workflow,
    level: Level | str = Level.PARTIAL,
    target_accuracy: float | None = None,
    target_error: float | None = None,
    min_evidence: int | None = None,
    policy: GatePolicy | None = None,
) -> LevelEvidence:
    """The serving version's evidence on unbiased human labels for ``level``, judged.

    ``full``: overall accuracy on shadow and assistance reviews and audits at ``full``,
    given after the last automatic step down (``selectors.gate_evidence``), judged by
    ``decisions.gate.evidence_judge``. ``partial``: the same whole-stream labels (audits
    at ``partial`` cover only the cases above the threshold in force, so they cannot
    calibrate one) calibrate the threshold for ``target_error``, and ``policy``'s
    thresholds are judged against it by ``decisions.gate.partial_judge``. Targets and
    policy default to the workflow's (a change is judged against the policy it creates).
    Duplicate images count once (``selectors.labelled_predictions``).
    """
    level = Level(level)
    min_evidence = workflow.min_evidence if min_evidence is None else min_evidence
    evidence = gate_evidence(workflow=workflow, level=level)
    partial = None
    if level is Level.PARTIAL:
        calibration = gate_evidence(workflow=workflow, level=Level.FULL)
        partial = partial_judge(
            scored=[ScoredLabel(p.predicted, p.confidence, p.correct) for p in calibration.pairs],
            policy=policy or gate_policy(workflow),
            labels=list(workflow.labels),
            model_version=(calibration.model_version.tag if calibration.model_version else None),
            since=calibration.since.created_at if calibration.since else None,
            target_error=workflow.target_error if target_error is None else target_error,
            min_evidence=min_evidence,
            confidence=workflow.evidence_confidence,
        )
    judgement = evidence_judge(
        level=evidence.level,
        successes=evidence.successes,
        n=evidence.n,
        model_version=evidence.model_version.tag if evidence.model_version else None,
        since=evidence.since.created_at if evidence.since else None,
        target_accuracy=workflow.target_accuracy if target_accuracy is None else target_accuracy,
        min_evidence=min_evidence,
        confidence=workflow.evidence_confidence,
    )
    return LevelEvidence(evidence=evidence, judgement=judgement, partial=partial)


@dataclass(frozen=True)
class StepDownStatus:
    """The audit window and what ``step_down_check`` says about it, with the settings in force."""

    window: AuditWindow
    verdict: StepDownVerdict
    confidence: float
    min_samples: int


def step_down_status(*, workflow: Workflow) -> StepDownStatus:
    """The audit window and what the step-down rule of the level says about it now.

    The quantity each level promised: at ``partial`` the audited error of automatic
    decisions against ``target_error`` (``decisions.stats.step_down_error_check``),
    otherwise the audited accuracy against ``target_accuracy`` (``step_down_check``).
    """
    window = audit_window(workflow=workflow)
    confidence = automation_setting("LOOPGATE_STEP_DOWN_CONFIDENCE")
    min_samples = automation_setting("LOOPGATE_STEP_DOWN_MIN_SAMPLES")
    if Level(workflow.level) is Level.PARTIAL:
        verdict = step_down_error_check(
            window.n - window.successes,
            window.n,
            target_error=workflow.target_error,
            confidence=confidence,
            min_samples=min_samples,
        )
    else:
        verdict = step_down_check(
            window.successes,
            window.n,
            target_accuracy=workflow.target_accuracy,
            confidence=confidence,
            min_samples=min_samples,
        )
    return StepDownStatus(
        window=window, verdict=verdict, confidence=confidence, min_samples=min_samples
    )


@dataclass(frozen=True)
class ThresholdAdvice:
    """The threshold report on the serving version's calibration labels.

    ``since``: the automatic step down after which those labels were given, if any.
    """

    model_version: str | None
    since: datetime | None
    report: ThresholdReport
    cost: CostChoice | None = None


def threshold_advice(
    *, workflow: Workflow, target_error: float, confidence: float, costs: Costs | None = None
) -> ThresholdAdvice:
    """The calibrated threshold for ``target_error`` (``decisions.thresholds``).

    Calibrated on the serving version's labels that sample the whole stream, after the
    last step down: shadow and assistance reviews and audits at ``full``, so cases of
    every confidence. Audits at ``partial`` are left out (they only cover cases above the
    threshold in force), as are the biased low-confidence reviews. With ``costs``, also the
    cheapest threshold under the same guarantee (``decisions.thresholds
    .cost_aware_threshold``, counting the workflow's audit rate as reviews).
    """
    evidence = gate_evidence(workflow=workflow, level=Level.FULL)
    scored = [ScoredLabel(p.predicted, p.confidence, p.correct) for p in evidence.pairs]
    cost = None
    if costs is not None:
        cost = cost_aware_threshold(
            scored,
            target_error=target_error,
            confidence=confidence,
            review_cost=costs.review,
            error_cost=costs.error,
            class_error_costs=costs.per_class,
            audit_rate=workflow.audit_rate,
        )
    report = threshold_report(
        scored,
        labels=workflow.labels,
        current_threshold=workflow.confidence_threshold,
        target_error=target_error,
        confidence=confidence,
        class_rules=workflow.class_thresholds,
    )
    return ThresholdAdvice(
        model_version=evidence.model_version.tag if evidence.model_version else None,
        since=evidence.since.created_at if evidence.since else None,
        report=report,
        cost=cost,
    )


@dataclass(frozen=True)
class AutomationStatus:
    """Everything the automation page and ``GET .../automation/`` show at the top."""

    workflow: Workflow
    serving_model_version: str | None
    evidence: Mapping[Level, LevelEvidence]
    step_down: StepDownStatus
    automated: bool
    automation_rate: AutomationRate
    alerts: tuple[Alert, ...]
    changes: tuple[LevelChange, ...]


def automation_status(*, workflow: Workflow, changes: int = 20) -> AutomationStatus:
    """The policy's state now: the evidence per automated level, the step-down window,
    the automation rate, firing alerts and the newest ``changes`` log entries."""
    version = serving_version(workflow_id=workflow.pk)
    return AutomationStatus(
        workflow=workflow,
        serving_model_version=version.tag if version else None,
        evidence={
            level: evidence_for_workflow(workflow=workflow, level=level)
            for level in (Level.PARTIAL, Level.FULL)
        },
        step_down=step_down_status(workflow=workflow),
        automated=Level(workflow.level) in AUTOMATED_LEVELS,
        automation_rate=automation_rate_since_level_change(workflow=workflow),
        alerts=tuple(alerts_firing(workflow=workflow)),
        changes=tuple(level_changes(workflow=workflow, limit=changes)),
    )


# --- Changes -------------------------------------------------------------------------------


def _gate(
    *, workflow: Workflow, changes: dict[str, Any], actor: User | None, override: bool
) -> GateDecision:
    """Judge ``changes`` with ``decisions.gate.judge_change``. Call holding the row lock."""

    def evidence(level: Level, targets: Targets, policy: GatePolicy) -> EvidenceCheck:
        gate = evidence_for_workflow(
            workflow=workflow,
            level=level,
            target_accuracy=targets.target_accuracy,
            target_error=targets.target_error,
            min_evidence=targets.min_evidence,
            policy=policy,
        )
        return EvidenceCheck(
            sufficient=gate.sufficient, reason=gate.reason, details=evidence_view(gate)
        )

    return judge_change(
        old=gate_policy(workflow),
        new=gate_policy(workflow, changes),
        floors=gate_floors(),
        evidence=evidence,
        override=override,
        by_superuser=bool(getattr(actor, "is_superuser", False))
        and bool(getattr(actor, "is_active", False)),
    )


@transaction.atomic
def automation_update(
    *,
    workflow: Workflow,
    actor: User | None,
    reason: str,
    changes: dict[str, Any],
    override: bool = False,
    automatic: bool = False,
    evidence: dict[str, Any] | None = None,
) -> LevelChange:
    """Change the workflow's automation policy and write the audit-log entry.

    The one way a person changes a policy: the API, the automation page, the Django
    admin and ``manage.py automation_set`` all call this. ``decisions.gate.judge_change``
    decides: raising the level into ``partial`` or ``full``, or loosening a guarantee
    there, needs evidence against the stricter of the old and new targets, within the
    floors; without it the change is refused (409, ``insufficient_evidence`` or
    ``below_floor``) with what is missing, unless an active superuser asks for an
    explicit override (logged ``overridden=True``; anyone else gets 403, ``override``).
    Moving down is always allowed. Raising the level resolves the firing accuracy and
    drift alerts. ``evidence`` is extra evidence to record (e.g. the threshold
    recommendation).
    """
    if not reason or not reason.strip():
        raise InvalidInput(
            "reason: a reason is required for every automation change", field="reason"
        )
    if not changes:
        raise InvalidInput("nothing to change: give at least one policy field")
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown policy fields: {sorted(unknown)}", field=sorted(unknown)[0])
    locked = _workflow_lock(workflow.pk)
    if locked is None:
        raise Conflict(f"workflow {workflow.slug!r} no longer exists")
    _validate_policy(locked, changes)
    decision = _gate(workflow=locked, changes=changes, actor=actor, override=override)
    if decision.refusal is Refusal.OVERRIDE_FORBIDDEN:
        raise Forbidden(decision.message, code="override")
    if not decision.allowed:
        raise Conflict(decision.message, code=str(decision.refusal))
    recorded: dict[str, Any] = dict(evidence or {})
    if decision.evidence is not None:
        recorded["gate"] = dict(decision.evidence.details)
    if decision.loosened:
        recorded["loosened"] = list(decision.loosened)
    if decision.overridden:
        recorded["override"] = {"problems": list(decision.problems), "message": decision.message}
    new_level = Level(changes.get("level", locked.level))
    change = _policy_write(
        workflow=locked,
        actor=actor,
        reason=reason.strip(),
        changes=changes,
        evidence=recorded,
        automatic=automatic,
        overridden=decision.overridden,
    )
    if decision.raising:
        who = getattr(actor, "username", None) or "the system"
        _alerts_resolve(
            workflow=locked,
            kind=AlertKind.ACCURACY,
            resolution=f"level raised to {new_level.value} by {who} (change {change.pk})",
        )
        _alerts_resolve(
            workflow=locked,
            kind=AlertKind.DRIFT,
            resolution=f"level raised to {new_level.value}: a new reference window starts",
        )
    workflow.refresh_from_db()
    return change


@transaction.atomic
def automation_threshold_apply(
    *,
    workflow: Workflow,
    actor: User | None,
    reason: str,
    target_error: float,
    confidence: float,
    costs: Costs | None = None,
) -> LevelChange:
    """Set the global threshold to the calibrated recommendation, as an audited change.

    With ``costs``, the cheapest threshold under the same guarantee instead. The
    recommendation is computed again under the workflow's lock, so what is applied is
    what the evidence says now. Refused (409, ``no_threshold``) when no threshold meets
    the target with that confidence (or none is cheaper than reviewing), with the reason.
    """
    if not 0.0 < target_error < 1.0:
        raise InvalidInput("target_error: must be strictly between 0 and 1", field="target_error")
    if not 0.0 < confidence < 1.0:
        raise InvalidInput("confidence: must be strictly between 0 and 1", field="confidence")
    locked = _workflow_lock(workflow.pk)
    if locked is None:
        raise Conflict(f"workflow {workflow.slug!r} no longer exists")
    report = threshold_report_view(
        threshold_advice(
            workflow=locked, target_error=target_error, confidence=confidence, costs=costs
        )
    )
    recommendation = report["recommendation"]
    cost = report["cost"]
    if cost is not None:
        if cost["threshold"] is None:
            raise Conflict(f"no threshold to apply: {cost['reason']}", code="no_threshold")
        recommendation = {
            **recommendation,
            "threshold": cost["threshold"],
            "expected_automation_rate": cost["automation_rate"],
            "error_rate": cost["error_rate"],
            "reason": cost["reason"],
        }
    if recommendation["threshold"] is None:
        raise Conflict(f"no threshold to apply: {recommendation['reason']}", code="no_threshold")
    evidence = {
        "threshold_recommendation": {
            "model_version": report["model_version"],
            "target_error": report["target_error"],
            "confidence": report["confidence"],
            "n_labelled": report["n_labelled"],
            "since": report["since"],
            "objective": "cost" if cost is not None else "automation",
            **({"cost": dict(cost)} if cost is not None else {}),
            **recommendation,
        }
    }
    change = automation_update(
        workflow=locked,
        actor=actor,
        reason=reason,
        changes={"confidence_threshold": recommendation["threshold"]},
        evidence=evidence,
    )
    workflow.refresh_from_db()
    return change


# --- The automatic step down -----------------------------------------------------------


def _step_down(*, workflow: Workflow) -> LevelChange | None:
    """Judge the audit window and step down one level if it shows the target is missed.

    Call holding the workflow's row lock, at an automated level.
    """
    status = step_down_status(workflow=workflow)
    window, verdict = status.window, status.verdict
    if not verdict.step_down:
        return None
    from_level = Level(workflow.level)
    to_level = LEVEL_ORDER[max(level_rank(from_level) - 1, level_rank(STEP_DOWN_FLOOR))]
    evidence = {
        "check": verdict.quantity,
        "window": audit_window_view(window),
        "upper_bound": verdict.upper_bound,
        "target_accuracy": verdict.target_accuracy,
        "target_error": workflow.target_error if verdict.quantity == "error" else None,
        "confidence": status.confidence,
        "min_samples": status.min_samples,
        "reason": verdict.reason,
    }
    change = _policy_write(
        workflow=workflow,
        actor=None,
        reason=(
            f"automatic step down from {from_level.value} to {to_level.value}: {verdict.reason}"
        ),
        changes={"level": to_level.value},
        evidence=evidence,
        automatic=True,
        overridden=False,
    )
    alert_raise(
        workflow=workflow,
        kind=AlertKind.ACCURACY,
        message=(
            f"Audited {verdict.quantity} of automated decisions by {window.model_version} "
            f"missed the target: {verdict.reason}. Stepped down from {from_level.value} to "
            f"{to_level.value}; going back up needs fresh evidence."
        ),
        data={
            "level_change": change.pk,
            "from": from_level.value,
            "to": to_level.value,
            **evidence,
        },
    )
    logger.warning("workflow %s stepped down: %s", workflow.slug, change.reason)
    return change


def _accuracy_alerts_recover(*, workflow: Workflow) -> None:
    """Resolve accuracy alerts whose stepped-from level has fresh, sufficient evidence."""
    for alert in alerts_firing(workflow=workflow, kind=AlertKind.ACCURACY):
        stepped_from = alert.data.get("from")
        if stepped_from not in {level.value for level in AUTOMATED_LEVELS}:
            continue
        gate = evidence_for_workflow(workflow=workflow, level=stepped_from)
        if gate.sufficient:
            _alerts_resolve(
                workflow=workflow,
                kind=alert.kind,
                alert_ids=[alert.pk],
                resolution=(
                    f"fresh evidence meets the target for {stepped_from} again "
                    f"({gate.reason}); an admin may raise the level"
                ),
            )


def _drift_check(*, workflow: Workflow) -> Alert | None:
    """Raise (or resolve) the output-drift alert from the serving version's confidences."""
    samples = drift_samples(workflow=workflow)
    raised = samples.raised
    if raised is None:
        return None
    verdict = confidence_drift(
        samples.reference,
        samples.recent,
        p_value=automation_setting("LOOPGATE_DRIFT_P_VALUE"),
        min_samples=automation_setting("LOOPGATE_DRIFT_MIN_SAMPLES"),
    )
    firing = alerts_firing(workflow=workflow, kind=AlertKind.DRIFT)
    data = {
        "check": "confidence_ks",
        "statistic": verdict.statistic,
        "p_value": verdict.p_value,
        "n_reference": verdict.n_reference,
        "n_recent": verdict.n_recent,
        "reference_mean": verdict.reference_mean,
        "recent_mean": verdict.recent_mean,
        "reference_until": raised.created_at.isoformat(),
        "reason": verdict.reason,
    }
    if verdict.drifted:
        if firing:
            alert = firing[0]
            alert.data = data
            alert.save(update_fields=["data"])
            return alert
        return alert_raise(
            workflow=workflow,
            kind=AlertKind.DRIFT,
            message=(
                "The serving model's confidences moved away from those the level was "
                f"earned on: {verdict.reason}. Accuracy is judged on audits; consider a "
                "higher audit rate until it is measured."
            ),
            data=data,
        )
    if firing and verdict.n_recent >= automation_setting("LOOPGATE_DRIFT_MIN_SAMPLES"):
        _alerts_resolve(
            workflow=workflow,
            kind=AlertKind.DRIFT,
            resolution=f"confidences back in line with the reference: {verdict.reason}",
        )
    return None


def automation_check_workflow(
    *, workflow_id: int, include_drift: bool = False
) -> LevelChange | None:
    """Run the automatic checks on one workflow; the step down it made, if any.

    At ``partial`` or ``full``: the accuracy step down on the audit window, and with
    ``include_drift`` the output-drift check (the periodic run does it; after an audit
    verdict only the accuracy matters). At every level: firing accuracy alerts resolve
    once fresh evidence for the level stepped down from is sufficient. Idempotent: after
    a step down the window starts afresh, so a second run right after does nothing.
    """
    with transaction.atomic():
        workflow = _workflow_lock(workflow_id)
        if workflow is None:
            return None
        change = None
        if Level(workflow.level) in AUTOMATED_LEVELS:
            change = _step_down(workflow=workflow)
            if change is None and include_drift:
                _drift_check(workflow=workflow)
        if change is None:
            _accuracy_alerts_recover(workflow=workflow)
        return change


def automation_check_all() -> int:
    """Check every workflow that is automated or has a firing alert; how many stepped down.

    The periodic (Celery beat) run: accuracy, output drift and alert recovery.
    """
    candidates = Workflow.objects.filter(level__in=[level.value for level in AUTOMATED_LEVELS])
    firing = Workflow.objects.filter(alerts__state__in=ACTIVE_ALERT_STATES)
    stepped = 0
    for workflow_id in (candidates | firing).distinct().values_list("pk", flat=True):
        try:
            if automation_check_workflow(workflow_id=workflow_id, include_drift=True) is not None:
                stepped += 1
        except Exception:
            logger.exception("automation check failed for workflow %s", workflow_id)
    return stepped


def automation_check_queue(*, workflow_id: int) -> None:
    """Queue ``automation_check_workflow`` once the surrounding transaction commits.

    The review flow calls this after an audit verdict, inside its transaction.
    """
    from automation.tasks import automation_check_workflow as check_task

    transaction.on_commit(lambda: check_task.delay(workflow_id))


# --- Alerts: acknowledge, resolve, notify -----------------------------------------------


class InvalidAlertTransition(Conflict):
    code = "invalid_alert_transition"


ALERT_NOTE_MAX = 2000


def _alert_move(*, alert: Alert, to_state: str, actor: User, note: str) -> Alert:
    note = (note or "").strip()
    if not note:
        raise InvalidInput("note: say why (it is kept with the alert)", field="note")
    if len(note) > ALERT_NOTE_MAX:
        raise InvalidInput(f"note: at most {ALERT_NOTE_MAX} characters", field="note")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if to_state not in ALERT_TRANSITIONS[locked.state]:
            raise InvalidAlertTransition(
                f"alert {locked.pk} is {locked.state}; it cannot become {to_state}"
            )
        now = timezone.now()
        locked.state = to_state
        if to_state == AlertState.ACKNOWLEDGED:
            locked.acknowledged_at, locked.acknowledged_by, locked.acknowledgement = (
                now,
                actor,
                note,
            )
            fields = ["state", "acknowledged_at", "acknowledged_by", "acknowledgement"]
        else:
            locked.resolved_at, locked.resolved_by = now, actor
            locked.resolution = f"resolved by {actor.get_username()}: {note}"
            fields = ["state", "resolved_at", "resolved_by", "resolution"]
        locked.save(update_fields=fields)
        if to_state == AlertState.RESOLVED:
            _alert_event(workflow=alert.workflow, alert=locked, fired=False)
    return locked


def alert_acknowledge(*, alert: Alert, actor: User, note: str) -> Alert:
    """``firing -> acknowledged``: someone is on it (who, when, the note are kept)."""
    return _alert_move(alert=alert, to_state=AlertState.ACKNOWLEDGED, actor=actor, note=note)


def alert_resolve(*, alert: Alert, actor: User, note: str) -> Alert:
    """``firing|acknowledged -> resolved`` by a person, with why. A condition that is
    still there fires a new alert at the next check."""
    return _alert_move(alert=alert, to_state=AlertState.RESOLVED, actor=actor, note=note)


# Channels that hear of every new alert, once its row is committed: email is built in
# (``automation.channels.alert_email``, registered in AppConfig.ready). A channel gets the
# alert's id and must not raise. Signed webhooks are not a channel: their events go into
# the outbox in the alert's own transaction (``_alert_event``), so a firing or resolving
# that commits is delivered at least once and one that rolls back is never announced.
_alert_channels: list[Any] = []


def alert_channel_register(channel: Any) -> None:
    if channel not in _alert_channels:
        _alert_channels.append(channel)


def alert_raise(*, workflow: Workflow, kind: str, message: str, data: dict[str, Any]) -> Alert:
    """Create a firing alert, write ``alert.fired`` to the webhook outbox in the same
    transaction, and tell every channel once it commits."""
    with transaction.atomic():
        alert = Alert.objects.create(
            workflow=workflow, kind=kind, state=AlertState.FIRING, message=message, data=data
        )
        _alert_event(workflow=workflow, alert=alert, fired=True)

    def notify() -> None:
        for channel in list(_alert_channels):
            try:
                channel(alert.pk)
            except Exception:
                logger.exception("alert channel %r failed for alert %s", channel, alert.pk)

    transaction.on_commit(notify)
    return alert
