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
* A repeated image (``Case.duplicate_of`` set: the same or a nearly identical image as
  an earlier case of the workflow) counts once, through its first case: duplicates are
  left out of evidence, calibration and audit windows (docs/decisions.md D56).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q

from automation.conf import automation_setting
from automation.models import ACTIVE_ALERT_STATES, Alert, AlertState, LevelChange
from decisions.routing import Level, ReviewReason, level_rank
from modelops.hooks import StepDown
from modelops.models import ModelVersion
from modelops.selectors import deployments_active, serving_version
from workflows.models import Case, DecisionSource, Prediction, Workflow

WHOLE_STREAM_REASONS = frozenset({ReviewReason.SHADOW.value, ReviewReason.ASSISTANCE.value})
UNBIASED_REASONS = WHOLE_STREAM_REASONS | {ReviewReason.AUDIT.value}
BIASED_REASONS = frozenset({ReviewReason.LOW_CONFIDENCE.value, ReviewReason.CLASS_RULE.value})


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
        Prediction.objects.filter(
            case__workflow=workflow, case__is_gold=False, case__duplicate_of__isnull=True
        )
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
    return _last_step_down_of(workflow_id=workflow.pk)


def _last_step_down_of(*, workflow_id: int) -> LevelChange | None:
    return (
        LevelChange.objects.filter(workflow_id=workflow_id, automatic=True)
        .exclude(from_level=F("to_level"))
        .order_by("-created_at", "-id")
        .first()
    )


def step_down_latest(*, workflow_id: int) -> StepDown | None:
    """``last_step_down`` as the retraining rule sees it (registered in ``modelops.hooks``)."""
    change = _last_step_down_of(workflow_id=workflow_id)
    return None if change is None else StepDown(at=change.created_at, reason=change.reason)


def last_raise(*, workflow: Workflow) -> LevelChange | None:
    """The newest change that moved the level up."""
    for change in (
        LevelChange.objects.filter(workflow=workflow)
        .exclude(from_level=F("to_level"))
        .order_by("-created_at", "-id")[:200]
    ):
        if (
            change.from_level
            and change.to_level
            and level_rank(change.to_level) > level_rank(change.from_level)
        ):
            return change
    return None


def alerts_of(*, workflow: Workflow, state: str | None = None, limit: int = 100) -> list[Alert]:
    qs = Alert.objects.filter(workflow=workflow)
    if state:
        qs = qs.filter(state=state)
    return list(qs.order_by("-created_at", "-id")[:limit])


def alerts_unacknowledged_counts(*, workflow_slugs: Sequence[str]) -> dict[str, int]:
    """How many alerts fire, not yet acknowledged, in each of ``workflow_slugs`` (one
    query; none when there are no slugs). Workflows without such alerts are left out."""
    if not workflow_slugs:
        return {}
    rows = (
        Alert.objects.filter(state=AlertState.FIRING, workflow__slug__in=list(workflow_slugs))
        .order_by()
        .values_list("workflow__slug")
        .annotate(n=Count("id"))
    )
    return {slug: n for slug, n in rows}


def alerts_firing(*, workflow: Workflow, kind: str | None = None) -> list[Alert]:
    qs = Alert.objects.filter(workflow=workflow, state__in=ACTIVE_ALERT_STATES)
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("-created_at", "-id"))


# --- Evidence per model version ---------------------------------------------------------


@dataclass(frozen=True)
class VersionEvidence:
    """The labelled predictions of one model version in a workflow, by what they can show.

    ``unbiased``: shadow, assistance and audit labels. ``biased``: low-confidence and
    class-rule reviews, for error analysis only. ``audited``: (right, audited) of the
    automated decisions this version made, per level routed at, from the blind audit.
    """

    model_version: str
    role: str | None
    unbiased: tuple[LabelledPrediction, ...]
    biased: tuple[LabelledPrediction, ...]
    audited: Mapping[str, tuple[int, int]]

    @property
    def audited_overall(self) -> tuple[int, int]:
        right = sum(counts[0] for counts in self.audited.values())
        return right, sum(counts[1] for counts in self.audited.values())


def evidence_by_version(*, workflow: Workflow) -> list[VersionEvidence]:
    """Every model version with labelled predictions in this workflow, or deployed in it.

    Active deployments first, then newest first.
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
        result.append(
            VersionEvidence(
                model_version=versions[version_id].tag,
                role=active.get(version_id),
                unbiased=tuple(p for p in version_pairs if p.review_reason in UNBIASED_REASONS),
                biased=tuple(p for p in version_pairs if p.review_reason in BIASED_REASONS),
                audited=audits.get(version_id, {}),
            )
        )
    return result


def _audited_decisions_by_version(*, workflow: Workflow) -> dict[int, dict[str, tuple[int, int]]]:
    """(right, audited) of model decisions per deciding version and level routed at."""
    rows = (
        Case.objects.filter(
            workflow=workflow,
            is_gold=False,
            duplicate_of__isnull=True,
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
        duplicate_of__isnull=True,
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


@dataclass(frozen=True)
class AutomationRate:
    """Cases routed at the current level since it last changed, and how many the model decided."""

    routed: int
    by_model: int
    since: datetime | None

    @property
    def rate(self) -> float | None:
        return self.by_model / self.routed if self.routed else None


def automation_rate_since_level_change(*, workflow: Workflow) -> AutomationRate:
    """Share of cases routed at the current level that the model decided."""
    changed = last_level_change(workflow=workflow)
    qs = Case.objects.filter(workflow=workflow, routed_level=workflow.level, is_gold=False)
    if changed is not None:
        qs = qs.filter(created_at__gt=changed.created_at)
    counts = qs.aggregate(
        routed=Count("id"), by_model=Count("id", filter=Q(decision_source=DecisionSource.MODEL))
    )
    return AutomationRate(
        routed=counts["routed"],
        by_model=counts["by_model"],
        since=changed.created_at if changed else None,
    )


# --- Output drift ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSamples:
    """Serving-version confidences from before the last raise (``reference``) and after it."""

    reference: tuple[float, ...]
    recent: tuple[float, ...]
    raised: LevelChange | None


def drift_samples(*, workflow: Workflow) -> DriftSamples:
    """Serving-version confidences: before the last raise (reference) and the newest.

    The reference is what the level was earned on: the ``LOOPGATE_DRIFT_WINDOW``
    predictions made just before the level was last raised. The recent sample is the
    newest as many predictions made after it. Empty when there is no such raise.
    """
    size = automation_setting("LOOPGATE_DRIFT_WINDOW")
    version = serving_version(workflow_id=workflow.pk)
    raised = last_raise(workflow=workflow)
    if version is None or raised is None:
        return DriftSamples(reference=(), recent=(), raised=raised)
    qs = Prediction.objects.filter(case__workflow=workflow, model_version=version)
    reference = (
        qs.filter(created_at__lte=raised.created_at)
        .order_by("-created_at", "-id")
        .values_list("confidence", flat=True)[:size]
    )
    recent = (
        qs.filter(created_at__gt=raised.created_at)
        .order_by("-created_at", "-id")
        .values_list("confidence", flat=True)[:size]
    )
    return DriftSamples(reference=tuple(reference), recent=tuple(recent), raised=raised)
