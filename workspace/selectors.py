"""Reads that compose a workflow's state across the apps: counts, automation rate,
accuracy per model version, and the review queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from accounts.types import RequestUser as User
from automation.selectors import UNBIASED_REASONS, labelled_predictions
from modelops.models import ModelVersion
from review.models import ReviewTask, TaskStatus
from workflows.access import workflows_visible
from workflows.models import Case, CaseStatus, DecisionSource, Workflow, WorkflowMembership
from workspace.models import WorkflowToken


@dataclass(frozen=True)
class QueueState:
    """Depth of the review queue and the age of its oldest waiting task, in seconds."""

    depth: int
    oldest_age_seconds: float | None


def queue_state(*, workflow: Workflow) -> QueueState:
    """The review queue of ``workflow``, gold tasks left out."""
    open_tasks = ReviewTask.objects.filter(workflow=workflow, status=TaskStatus.OPEN).exclude(
        kind="gold"
    )
    agg = open_tasks.aggregate(depth=Count("id"), oldest=Min("created_at"))
    oldest = agg["oldest"]
    return QueueState(
        depth=agg["depth"],
        oldest_age_seconds=(timezone.now() - oldest).total_seconds() if oldest else None,
    )


@dataclass(frozen=True)
class Tally:
    """``successes`` right out of ``n`` labelled predictions."""

    successes: int
    n: int

    @classmethod
    def of(cls, outcomes: list[bool]) -> Tally:
        return cls(successes=sum(outcomes), n=len(outcomes))


@dataclass(frozen=True)
class VersionAccuracy:
    """One model version's predictions against human labels: overall, on audits, per
    level routed at and per human label (in the order first seen, newest label first)."""

    model_version: str | None
    overall: Tally
    audit: Tally
    per_level: Mapping[str, Tally]
    per_class: Mapping[str, Tally]


# Which human labels an accuracy is measured on (docs/api.md, "Which labels").
LABELS_UNBIASED, LABELS_ALL = "unbiased", "all"
LABEL_SOURCES = {
    LABELS_UNBIASED: tuple(sorted(UNBIASED_REASONS)),
    LABELS_ALL: (*sorted(UNBIASED_REASONS), "class_rule", "low_confidence"),
}


@dataclass(frozen=True)
class WorkflowStats:
    workflow: str
    level: str
    labels: str
    counts: Mapping[str, int]
    decided_total: int
    decided_by_model: int
    decided_by_human: int
    accuracy: tuple[VersionAccuracy, ...]
    queue: QueueState

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def automation_rate(self) -> float | None:
        return self.decided_by_model / self.decided_total if self.decided_total else None


def workflow_stats(*, workflow: Workflow, labels: str = LABELS_UNBIASED) -> WorkflowStats:
    """Case counts per status, who decided, accuracy per model version, the queue.

    ``labels`` says which human labels the accuracy is measured on: ``unbiased`` (the
    default) counts shadow and assistance reviews and audits, a random sample of what
    the model saw or decided; ``all`` adds the low-confidence and class-rule reviews,
    the hard cases partial automation sends to people, which pull accuracy down. Gold
    cases measure reviewers and repeated images count once, as everywhere.
    """
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {sorted(LABEL_SOURCES)}")
    counted = set(LABEL_SOURCES[labels])
    by_status = dict(
        Case.objects.filter(workflow=workflow)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts = {status.value: by_status.get(status.value, 0) for status in CaseStatus}
    decided = Case.objects.filter(workflow=workflow, status=CaseStatus.DECIDED)
    by_source = dict(
        decided.values_list("decision_source")
        .annotate(n=Count("id"))
        .values_list("decision_source", "n")
    )

    per_version: dict[int, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for pair in labelled_predictions(workflow=workflow):
        if pair.review_reason not in counted:
            continue
        per_version[pair.model_version_id]["all"].append(pair.correct)
        per_version[pair.model_version_id][f"level:{pair.level}"].append(pair.correct)
        per_version[pair.model_version_id][f"class:{pair.human_label}"].append(pair.correct)
        if pair.review_reason == "audit":
            per_version[pair.model_version_id]["audit"].append(pair.correct)
    tags = {mv.pk: str(mv) for mv in ModelVersion.objects.filter(pk__in=per_version)}
    accuracy = []
    for version_id, groups in per_version.items():
        per_level: dict[str, Tally] = {}
        per_class: dict[str, Tally] = {}
        for key, values in groups.items():
            kind, _, name = key.partition(":")
            if kind == "level":
                per_level[name] = Tally.of(values)
            elif kind == "class":
                per_class[name] = Tally.of(values)
        accuracy.append(
            VersionAccuracy(
                model_version=tags.get(version_id),
                overall=Tally.of(groups["all"]),
                audit=Tally.of(groups["audit"]),
                per_level=per_level,
                per_class=per_class,
            )
        )
    accuracy.sort(key=lambda entry: entry.model_version or "")

    return WorkflowStats(
        workflow=workflow.slug,
        level=workflow.level,
        labels=labels,
        counts=counts,
        decided_total=sum(by_source.values()),
        decided_by_model=by_source.get(DecisionSource.MODEL, 0),
        decided_by_human=by_source.get(DecisionSource.HUMAN, 0),
        accuracy=tuple(accuracy),
        queue=queue_state(workflow=workflow),
    )


# --- Settings: lists of workflows, members and tokens --------------------------------------


def workflows_listed(user: User, *, archived: str = "exclude") -> QuerySet[Workflow]:
    """The workflows ``user`` may see; archived ones only when asked for."""
    workflows = workflows_visible(user)
    if archived == "exclude":
        return workflows.filter(archived_at__isnull=True)
    if archived == "only":
        return workflows.filter(archived_at__isnull=False)
    return workflows


def members_of(*, workflow: Workflow) -> list[WorkflowMembership]:
    """The workflow's people (token accounts are listed with the tokens), by username."""
    return list(
        WorkflowMembership.objects.filter(workflow=workflow, user__workflow_token__isnull=True)
        .select_related("user")
        .order_by("user__username")
    )


def workflow_tokens(*, workflow: Workflow) -> list[WorkflowToken]:
    return list(
        WorkflowToken.objects.filter(workflow=workflow).select_related(
            "token", "created_by", "revoked_by"
        )
    )
