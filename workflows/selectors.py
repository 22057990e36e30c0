"""Reads about workflows and their cases."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Max, Min
from django.utils import timezone

from automation.selectors import labelled_predictions
from automation.stats import clopper_pearson
from modelops.models import ModelVersion
from review.models import ReviewTask, TaskStatus
from workflows.models import (
    Case,
    CaseStatus,
    DecisionSource,
    PeriodicRun,
    WorkerHeartbeat,
    Workflow,
)


def queue_state(*, workflow: Workflow) -> dict[str, Any]:
    """Depth of the review queue and the age of its oldest waiting task, in seconds."""
    open_tasks = ReviewTask.objects.filter(workflow=workflow, status=TaskStatus.OPEN).exclude(
        kind="gold"
    )
    agg = open_tasks.aggregate(depth=Count("id"), oldest=Min("created_at"))
    oldest = agg["oldest"]
    return {
        "depth": agg["depth"],
        "oldest_age_seconds": (timezone.now() - oldest).total_seconds() if oldest else None,
    }


def interval_dict(successes: int, n: int) -> dict[str, Any]:
    interval = clopper_pearson(successes, n, 0.95)
    return {
        "estimate": interval.estimate if n else None,
        "low": interval.low,
        "high": interval.high,
        "n": n,
        "successes": successes,
        "confidence": 0.95,
    }


def workflow_stats(*, workflow: Workflow) -> dict[str, Any]:
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
    n_decided = sum(by_source.values())
    n_model = by_source.get(DecisionSource.MODEL, 0)

    per_version: dict[int, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for pair in labelled_predictions(workflow=workflow):
        per_version[pair.model_version_id]["all"].append(pair.correct)
        per_version[pair.model_version_id][f"level:{pair.level}"].append(pair.correct)
        per_version[pair.model_version_id][f"class:{pair.human_label}"].append(pair.correct)
        if pair.review_reason == "audit":
            per_version[pair.model_version_id]["audit"].append(pair.correct)
    tags = dict(
        (pk, str(mv))
        for pk, mv in ((mv.pk, mv) for mv in ModelVersion.objects.filter(pk__in=per_version))
    )
    accuracy = []
    for version_id, groups in per_version.items():
        entry = {
            "model_version": tags.get(version_id),
            "overall": interval_dict(sum(groups["all"]), len(groups["all"])),
            "audit": interval_dict(sum(groups["audit"]), len(groups["audit"])),
            "per_level": {},
            "per_class": {},
        }
        for key, values in groups.items():
            kind, _, name = key.partition(":")
            if kind == "level":
                entry["per_level"][name] = interval_dict(sum(values), len(values))
            elif kind == "class":
                entry["per_class"][name] = interval_dict(sum(values), len(values))
        accuracy.append(entry)
    accuracy.sort(key=lambda e: e["model_version"] or "")

    return {
        "workflow": workflow.slug,
        "level": workflow.level,
        "counts": counts,
        "total": sum(counts.values()),
        "decided": {
            "total": n_decided,
            "by_model": n_model,
            "by_human": by_source.get(DecisionSource.HUMAN, 0),
        },
        "automation_rate": (n_model / n_decided) if n_decided else None,
        "accuracy": accuracy,
        "queue": queue_state(workflow=workflow),
    }


def processing_backlog() -> dict[str, Any]:
    """Cases waiting for a worker, and when a worker last took a batch or was seen alive.

    Ages in seconds, ``None`` when there is nothing to measure. Four indexed reads.
    """
    now = timezone.now()
    oldest = Case.objects.filter(status=CaseStatus.RECEIVED).aggregate(oldest=Min("created_at"))
    workers = WorkerHeartbeat.objects.aggregate(claim=Max("last_claim_at"), seen=Max("seen_at"))
    sweep = PeriodicRun.objects.filter(name="requeue-stalled-cases").first()

    def age(moment: Any) -> float | None:
        return (now - moment).total_seconds() if moment else None

    return {
        "oldest_waiting_age_seconds": age(oldest["oldest"]),
        "last_claim_age_seconds": age(workers["claim"]),
        "last_heartbeat_age_seconds": age(workers["seen"]),
        "last_sweep_age_seconds": age(sweep.last_run_at if sweep else None),
    }
