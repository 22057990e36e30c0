"""``GET /api/v1/workflows/{slug}/stats/`` as plain JSON-shaped data (its public contract)."""

from __future__ import annotations

from typing import TypedDict

from decisions.stats import clopper_pearson
from workspace.selectors import (
    LABEL_SOURCES,
    QueueState,
    Tally,
    VersionAccuracy,
    WorkflowStats,
)

STATS_CONFIDENCE = 0.95


class IntervalData(TypedDict):
    estimate: float | None
    low: float
    high: float
    n: int
    successes: int
    confidence: float


class VersionAccuracyData(TypedDict):
    model_version: str | None
    overall: IntervalData
    audit: IntervalData
    per_level: dict[str, IntervalData]
    per_class: dict[str, IntervalData]


class DecidedData(TypedDict):
    total: int
    by_model: int
    by_human: int


class QueueData(TypedDict):
    depth: int
    oldest_age_seconds: float | None


class LabelsData(TypedDict):
    which: str
    review_reasons: list[str]
    note: str


LABEL_NOTES = {
    "unbiased": "shadow and assistance reviews and blind audits: a random sample of what "
    "the model saw or decided, so the accuracy is an honest estimate",
    "all": "every human verdict, including the low-confidence and class-rule reviews that "
    "partial automation sends to people by design: biased toward hard cases, lower than "
    "the model's true accuracy",
}


class WorkflowStatsData(TypedDict):
    workflow: str
    level: str
    labels: LabelsData
    counts: dict[str, int]
    total: int
    decided: DecidedData
    automation_rate: float | None
    accuracy: list[VersionAccuracyData]
    queue: QueueData


def interval_data(tally: Tally) -> IntervalData:
    """An exact two-sided 95% interval (estimate None when nothing was seen)."""
    interval = clopper_pearson(tally.successes, tally.n, STATS_CONFIDENCE)
    return {
        "estimate": interval.estimate if tally.n else None,
        "low": interval.low,
        "high": interval.high,
        "n": tally.n,
        "successes": tally.successes,
        "confidence": STATS_CONFIDENCE,
    }


def _version_data(entry: VersionAccuracy) -> VersionAccuracyData:
    return {
        "model_version": entry.model_version,
        "overall": interval_data(entry.overall),
        "audit": interval_data(entry.audit),
        "per_level": {name: interval_data(t) for name, t in entry.per_level.items()},
        "per_class": {name: interval_data(t) for name, t in entry.per_class.items()},
    }


def queue_data(queue: QueueState) -> QueueData:
    return {"depth": queue.depth, "oldest_age_seconds": queue.oldest_age_seconds}


def workflow_stats_data(stats: WorkflowStats) -> WorkflowStatsData:
    return {
        "workflow": stats.workflow,
        "level": stats.level,
        "labels": {
            "which": stats.labels,
            "review_reasons": list(LABEL_SOURCES[stats.labels]),
            "note": LABEL_NOTES[stats.labels],
        },
        "counts": dict(stats.counts),
        "total": stats.total,
        "decided": {
            "total": stats.decided_total,
            "by_model": stats.decided_by_model,
            "by_human": stats.decided_by_human,
        },
        "automation_rate": stats.automation_rate,
        "accuracy": [_version_data(entry) for entry in stats.accuracy],
        "queue": queue_data(stats.queue),
    }
