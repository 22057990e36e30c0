"""Writes for the automation policy. Every change is a LevelChange with reason and evidence."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automation.models import LevelChange
from automation.routing import AUTOMATED_LEVELS, Level, level_rank
from automation.selectors import labelled_predictions
from automation.stats import evidence_for_level
from loopgate.errors import Conflict, Forbidden, InvalidInput
from modelops.selectors import serving_version
from workflows.models import Workflow

POLICY_FIELDS = (
    "level",
    "confidence_threshold",
    "class_thresholds",
    "audit_rate",
    "target_accuracy",
    "min_evidence",
)

# Sources of human labels that are an unbiased sample of the model's cases: every case
# in shadow and assistance, and the random audit of model-decided cases. Reviews of
# low-confidence cases in partial automation are not (they are the hard ones).
UNBIASED_REASONS = frozenset({"shadow", "assistance", "audit"})


def policy_snapshot(workflow: Workflow) -> dict[str, Any]:
    return {name: getattr(workflow, name) for name in POLICY_FIELDS}


def evidence_for_workflow(*, workflow: Workflow) -> dict[str, Any]:
    """The serving version's accuracy on unbiased human labels, against the target."""
    version = serving_version(workflow_id=workflow.pk)
    if version is None:
        return {"sufficient": False, "reason": "no serving model is deployed", "n": 0}
    pairs = [
        p
        for p in labelled_predictions(workflow=workflow, model_version_id=version.pk)
        if p.review_reason in UNBIASED_REASONS
    ]
    successes = sum(p.correct for p in pairs)
    verdict = evidence_for_level(
        successes,
        len(pairs),
        target_accuracy=workflow.target_accuracy,
        min_evidence=workflow.min_evidence,
        confidence=workflow.evidence_confidence,
    )
    return {
        "sufficient": verdict.sufficient,
        "reason": verdict.reason,
        "n": verdict.n,
        "successes": successes,
        "accuracy": verdict.accuracy.estimate,
        "lower_bound": verdict.lower_bound,
        "target_accuracy": verdict.target_accuracy,
        "min_evidence": verdict.min_evidence,
        "model_version": version.tag,
    }


def _validate_policy(workflow: Workflow, changes: dict[str, Any]) -> None:
    labels = set(workflow.labels)
    if "level" in changes and changes["level"] not in {v.value for v in Level}:
        raise InvalidInput(f"level: unknown level {changes['level']!r}", field="level")
    for name in ("confidence_threshold", "audit_rate", "target_accuracy"):
        if name in changes:
            value = changes[name]
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise InvalidInput(f"{name}: must be a number within [0, 1]", field=name)
    if "min_evidence" in changes:
        value = changes["min_evidence"]
        if not isinstance(value, int) or value < 0:
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
                not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0
            ):
                raise InvalidInput(
                    f"class_thresholds: {label!r} must be a number within [0, 1] or null",
                    field="class_thresholds",
                )


@transaction.atomic
def automation_update(
    *,
    workflow: Workflow,
    actor: Any,
    reason: str,
    changes: dict[str, Any],
    override: bool = False,
    automatic: bool = False,
) -> LevelChange:
    """Change the workflow's automation policy and write the audit-log entry.

    Raising the level into ``partial`` or ``full`` needs evidence (enough unbiased
    human labels on which the serving version's lower accuracy bound meets the target);
    without it the change is refused with what is missing, unless a superuser asks for
    an explicit, logged override. Moving down is always allowed.
    """
    if not reason or not reason.strip():
        raise InvalidInput(
            "reason: a reason is required for every automation change", field="reason"
        )
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown policy fields: {sorted(unknown)}", field=sorted(unknown)[0])
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    _validate_policy(workflow, changes)
    before = policy_snapshot(workflow)
    evidence: dict[str, Any] = {}
    new_level = Level(changes.get("level", workflow.level))
    raising = level_rank(new_level) > level_rank(workflow.level)
    overridden = False
    if raising and new_level in AUTOMATED_LEVELS:
        evidence = evidence_for_workflow(workflow=workflow)
        if not evidence["sufficient"]:
            if not override:
                raise Conflict(
                    f"cannot raise the level to {new_level.value}: {evidence['reason']}",
                    code="insufficient_evidence",
                )
            if not getattr(actor, "is_superuser", False):
                raise Forbidden("only a superuser may override the evidence gate", code="override")
            overridden = True
    for name, value in changes.items():
        setattr(workflow, name, value)
    workflow.save(update_fields=list(changes))
    return LevelChange.objects.create(
        workflow=workflow,
        actor=actor if getattr(actor, "pk", None) else None,
        automatic=automatic,
        overridden=overridden,
        before=before,
        after=policy_snapshot(workflow),
        reason=reason.strip(),
        evidence=evidence,
    )
