"""The monitoring series of a workflow over a time range, for the API and the dashboard.

One read per source (cases, measurements, predictions, verdicts, drift checks, alerts,
the open queue), bucketed in Python; the range is bounded (``MAX_BUCKETS`` buckets and at
most ``MAX_CASES`` cases read), so a request costs a fixed number of statements.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from automation.models import Alert
from decisions.stats import clopper_pearson
from inference.measure import INPUT_METRICS
from monitoring.models import CaseMeasurement, DriftCheck
from monitoring.selectors import monitoring_settings_of, reference_window
from workflows.models import Case, CaseEvent, DecisionSource, Prediction, Workflow

BUCKETS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
}
MAX_BUCKETS = 500
MAX_CASES = 50_000
CONFIDENCE_BINS = 10
STAGES = ("queue_wait", "model", "routing", "human", "total")
# What ``processing.deadlines`` does to a case still waiting for a human at its deadline.
FALLBACK_KINDS = ("label", "model", "escalate", "none")


@dataclass(frozen=True)
class SeriesQuery:
    since: datetime
    until: datetime
    bucket: str
    model_version_id: int | None = None


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "n": 0}
    array = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "n": int(array.size),
    }


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max((later - earlier).total_seconds(), 0.0)


def _bucket_starts(query: SeriesQuery) -> list[datetime]:
    step = BUCKETS[query.bucket]
    first = datetime.fromtimestamp(
        (query.since.timestamp() // step.total_seconds()) * step.total_seconds(),
        tz=query.since.tzinfo,
    )
    starts: list[datetime] = []
    current = first
    while current < query.until and len(starts) < MAX_BUCKETS:
        starts.append(current)
        current += step
    return starts


def _index(starts: list[datetime], step: timedelta, moment: datetime) -> int | None:
    if not starts or moment < starts[0]:
        return None
    index = int((moment - starts[0]) / step)
    return index if index < len(starts) else None


def monitoring_series(*, workflow: Workflow, query: SeriesQuery) -> dict[str, Any]:
    """Every series of the dashboard for ``workflow`` in ``query``'s range."""
    step = BUCKETS[query.bucket]
    starts = _bucket_starts(query)
    size = len(starts)

    def empty() -> list[Any]:
        return [None] * size

    cases = Case.objects.filter(
        workflow=workflow, created_at__gte=query.since, created_at__lt=query.until
    )
    if query.model_version_id is not None:
        cases = cases.filter(decision_model_version_id=query.model_version_id) | cases.filter(
            deciding_prediction__model_version_id=query.model_version_id
        )
    case_rows = list(
        cases.values(
            "created_at",
            "status",
            "decision_source",
            "decided_at",
            "decision_label",
            "human_label",
            "review_reason",
            "failure_reason",
            "deciding_prediction__label",
            "decision_model_version_id",
        ).order_by("created_at")[:MAX_CASES]
    )
    measurements = CaseMeasurement.objects.filter(
        workflow=workflow, routed_at__gte=query.since, routed_at__lt=query.until
    )
    if query.model_version_id is not None:
        measurements = measurements.filter(model_version_id=query.model_version_id)
    measure_rows = list(
        measurements.values(
            "routed_at",
            "received_at",
            "scoring_started_at",
            "scored_at",
            "error_stage",
            "label",
            "confidence",
            "case__decided_at",
            "case__decision_source",
            *INPUT_METRICS,
        ).order_by("routed_at")[:MAX_CASES]
    )

    volume = [0] * size
    decided = [0] * size
    by_model = [0] * size
    human_decisions = [0] * size
    overrides = [0] * size
    suggested = [0] * size
    errors: list[Counter[str]] = [Counter() for _ in range(size)]
    for row in case_rows:
        index = _index(starts, step, row["created_at"])
        if index is None:
            continue
        volume[index] += 1
        if row["status"] == "failed":
            errors[index]["decode"] += 1
        if row["review_reason"] == "model_error":
            errors[index]["scoring"] += 1
        if row["decision_source"]:
            decided[index] += 1
            if row["decision_source"] == DecisionSource.MODEL:
                by_model[index] += 1
            elif row["decision_source"] == DecisionSource.HUMAN:
                human_decisions[index] += 1
                model_label = row["deciding_prediction__label"]
                if model_label:
                    suggested[index] += 1
                    if model_label != row["decision_label"]:
                        overrides[index] += 1

    stage_values: list[dict[str, list[float]]] = [defaultdict(list) for _ in range(size)]
    metric_values: list[dict[str, list[float]]] = [defaultdict(list) for _ in range(size)]
    histogram = [[0] * CONFIDENCE_BINS for _ in range(size)]
    mix: list[Counter[str]] = [Counter() for _ in range(size)]
    for row in measure_rows:
        index = _index(starts, step, row["routed_at"])
        if index is None:
            continue
        stages = {
            "queue_wait": _seconds(row["scoring_started_at"], row["received_at"]),
            "model": _seconds(row["scored_at"], row["scoring_started_at"]),
            "routing": _seconds(row["routed_at"], row["scored_at"] or row["scoring_started_at"]),
            "human": _seconds(row["case__decided_at"], row["routed_at"])
            if row["case__decision_source"] == DecisionSource.HUMAN
            else None,
            "total": _seconds(row["case__decided_at"], row["received_at"]),
        }
        for name, value in stages.items():
            if value is not None:
                stage_values[index][name].append(value)
        for name in INPUT_METRICS:
            if row[name] is not None:
                metric_values[index][name].append(float(row[name]))
        if row["confidence"] is not None:
            bin_index = min(int(row["confidence"] * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)
            histogram[index][bin_index] += 1
        if row["label"]:
            mix[index][row["label"]] += 1

    predictions = Prediction.objects.filter(
        case__workflow=workflow, created_at__gte=query.since, created_at__lt=query.until
    )
    if query.model_version_id is not None:
        predictions = predictions.filter(model_version_id=query.model_version_id)
    model_latency: list[list[float]] = [[] for _ in range(size)]
    for created_at, latency in predictions.values_list("created_at", "latency_ms")[:MAX_CASES]:
        index = _index(starts, step, created_at)
        if index is not None and latency is not None:
            model_latency[index].append(float(latency))

    audited = _audited_accuracy(workflow=workflow, query=query, starts=starts, step=step)
    deadlines = _deadlines(workflow=workflow, query=query, starts=starts, step=step)
    reference = _reference_summary(workflow=workflow)
    checks = list(
        DriftCheck.objects.filter(
            workflow=workflow, created_at__gte=query.since, created_at__lt=query.until
        )
        .order_by("created_at")
        .values("id", "created_at", "enough_data", "drifted", "alarm", "estimate")[:MAX_BUCKETS]
    )
    latest = DriftCheck.objects.filter(workflow=workflow).order_by("-created_at", "-id").first()
    alerts: list[dict[str, Any]] = []
    for alert_row in (
        Alert.objects.filter(workflow=workflow, created_at__lt=query.until)
        .exclude(resolved_at__lt=query.since)
        .order_by("-created_at")
        .values(
            "id",
            "kind",
            "state",
            "message",
            "created_at",
            "acknowledged_at",
            "acknowledgement",
            "resolved_at",
            "resolution",
            "data",
        )[:200]
    ):
        alert: dict[str, Any] = dict(alert_row)
        # What the alert triggered (``monitoring.services.alert_actions_run``), in words.
        actions = (alert.pop("data") or {}).get("actions") or {}
        alert["actions"] = [
            action["summary"] for action in actions.values() if isinstance(action, dict)
        ]
        alerts.append(alert)
    labels = sorted({label for counter in mix for label in counter} | set(workflow.labels or []))
    return {
        "workflow": workflow.slug,
        "since": query.since,
        "until": query.until,
        "bucket": query.bucket,
        "model_version": query.model_version_id,
        "buckets": starts,
        "volume": volume,
        "automation_rate": [
            round(by_model[i] / decided[i], 4) if decided[i] else None for i in range(size)
        ],
        "decided": decided,
        "decided_by_model": by_model,
        "human_decisions": human_decisions,
        "human_override_rate": [
            round(overrides[i] / suggested[i], 4) if suggested[i] else None for i in range(size)
        ],
        "stage_errors": {
            stage: [errors[i][stage] for i in range(size)] for stage in ("decode", "scoring")
        },
        "latency": {
            stage: [_percentiles(stage_values[i][stage]) for i in range(size)] for stage in STAGES
        },
        "model_latency_ms": [_percentiles(model_latency[i]) for i in range(size)],
        "inputs": {
            name: [_summary(metric_values[i][name]) for i in range(size)] for name in INPUT_METRICS
        },
        "reference": reference,
        "confidence_histogram": {
            "edges": [round(k / CONFIDENCE_BINS, 2) for k in range(CONFIDENCE_BINS + 1)],
            "counts": histogram,
        },
        "class_mix": {
            "labels": labels,
            "counts": [[mix[i][label] for label in labels] for i in range(size)],
        },
        "audited_accuracy": audited,
        "deadlines": deadlines,
        "label_free_estimate": [
            {"at": check["created_at"], **(check["estimate"] or {})}
            for check in checks
            if check["estimate"]
        ],
        "drift_checks": [
            {
                "at": check["created_at"],
                "enough_data": check["enough_data"],
                "drifted": check["drifted"],
                "alarm": check["alarm"],
            }
            for check in checks
        ],
        "drift_status": _drift_status(latest),
        "queue": _queue(workflow=workflow),
        "alerts": alerts,
    }


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p10": None, "p90": None, "n": 0}
    array = np.asarray(values, dtype=np.float64)
    p10, p90 = np.percentile(array, [10, 90])
    return {
        "mean": round(float(array.mean()), 4),
        "p10": round(float(p10), 4),
        "p90": round(float(p90), 4),
        "n": int(array.size),
    }


def _reference_summary(*, workflow: Workflow) -> dict[str, Any]:
    from monitoring.selectors import measurements_reference

    settings_row = monitoring_settings_of(workflow=workflow)
    window = reference_window(workflow=workflow, settings=settings_row)
    if window is None:
        return {"window": None, "metrics": {}}
    rows = measurements_reference(window=window, limit=settings_row.reference_size)
    metrics = {}
    for name in INPUT_METRICS:
        values = [float(row[name]) for row in rows if row.get(name) is not None]
        if values:
            metrics[name] = {
                "mean": round(float(np.mean(values)), 4),
                "std": round(float(np.std(values)), 4),
                "n": len(values),
            }
    return {"window": window.as_dict() | {"n": len(rows)}, "metrics": metrics}


def _audited_accuracy(
    *, workflow: Workflow, query: SeriesQuery, starts: list[datetime], step: timedelta
) -> list[dict[str, Any]]:
    """Per model version and bucket: model decisions a human labelled, right or wrong,
    with the exact 95 % interval."""
    audited = Case.objects.filter(
        workflow=workflow,
        decision_source=DecisionSource.MODEL,
        decided_at__gte=query.since,
        decided_at__lt=query.until,
    ).exclude(human_label="")
    if query.model_version_id is not None:
        audited = audited.filter(decision_model_version_id=query.model_version_id)
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for decided_at, label, human, version in audited.values_list(
        "decided_at", "decision_label", "human_label", "decision_model_version__name"
    )[:MAX_CASES]:
        index = _index(starts, step, decided_at) if decided_at is not None else None
        if index is None:
            continue
        cell = counts[(str(version), index)]
        cell[0] += int(label == human)
        cell[1] += 1
    series = []
    for (version, index), (right, n) in sorted(counts.items()):
        interval = clopper_pearson(right, n)
        series.append(
            {
                "model_version": version,
                "bucket": starts[index],
                "accuracy": round(interval.estimate, 4),
                "low": round(interval.low, 4),
                "high": round(interval.high, 4),
                "n": n,
            }
        )
    return series


def _deadlines(
    *, workflow: Workflow, query: SeriesQuery, starts: list[datetime], step: timedelta
) -> dict[str, Any]:
    """Per bucket of the deadline: cases whose deadline passed before a decision (still
    undecided, or decided later), and the fallbacks applied, by kind.

    The fallback kind is read from the event that applied it (``data.fallback``): a
    ``label`` or ``model`` fallback decides the case, ``escalate`` and ``none`` do not.
    Not filtered by model version: a deadline is a promise about the case, whoever
    decides it.
    """
    from django.utils import timezone

    size = len(starts)
    until = min(query.until, timezone.now())
    missed = [0] * size
    for deadline_at, decided_at in (
        Case.objects.filter(workflow=workflow, deadline_at__gte=query.since, deadline_at__lt=until)
        .values_list("deadline_at", "decided_at")
        .order_by("deadline_at")[:MAX_CASES]
    ):
        if deadline_at is None:
            continue
        index = _index(starts, step, deadline_at)
        if index is not None and (decided_at is None or decided_at > deadline_at):
            missed[index] += 1
    fallbacks = {kind: [0] * size for kind in FALLBACK_KINDS}
    for applied_at, data in (
        CaseEvent.objects.filter(
            case__workflow=workflow,
            case__deadline_fallback_at__gte=query.since,
            case__deadline_fallback_at__lt=query.until,
            kind__in=("status", "deadline_missed"),
            data__has_key="fallback",
        )
        .values_list("case__deadline_fallback_at", "data")
        .order_by("case__deadline_fallback_at")[:MAX_CASES]
    ):
        index = _index(starts, step, applied_at) if applied_at is not None else None
        kind = data.get("fallback") if isinstance(data, dict) else None
        if index is not None and kind in fallbacks:
            fallbacks[kind][index] += 1
    return {
        "missed": missed,
        "missed_total": sum(missed),
        "fallbacks": fallbacks,
        "fallback_totals": {kind: sum(counts) for kind, counts in fallbacks.items()},
    }


def _drift_status(check: DriftCheck | None) -> dict[str, Any]:
    if check is None:
        return {"state": "unknown", "reason": "no drift check has run yet", "metrics": []}
    report = check.report or {}
    state = "drift" if check.alarm else "watch" if check.drifted else "ok"
    if not check.enough_data:
        state = "insufficient_data"
    return {
        "state": state,
        "checked_at": check.created_at,
        "reason": report.get("reason", ""),
        "drifted": check.drifted,
        "alarm": check.alarm,
        "metrics": report.get("metrics", []),
        "estimate": check.estimate,
        "reference": check.reference,
    }


def _queue(*, workflow: Workflow) -> dict[str, Any]:
    from django.db.models import Count, Min
    from django.utils import timezone

    from review.models import ReviewTask

    row = (
        ReviewTask.objects.filter(workflow=workflow, status="open")
        .exclude(kind="gold")
        .aggregate(n=Count("id"), oldest=Min("created_at"))
    )
    oldest = row["oldest"]
    return {
        "depth": row["n"],
        "oldest_age_seconds": (timezone.now() - oldest).total_seconds() if oldest else None,
    }


def monitoring_overview(*, workflows: Iterable[Workflow]) -> list[dict[str, Any]]:
    """One line per workflow for the overview page: drift state, alerts, queue."""
    lines = []
    for workflow in workflows:
        latest = DriftCheck.objects.filter(workflow=workflow).order_by("-created_at", "-id").first()
        active = Alert.objects.filter(
            workflow=workflow, state__in=("firing", "acknowledged")
        ).count()
        lines.append(
            {
                "workflow": workflow,
                "drift": _drift_status(latest),
                "active_alerts": active,
                "queue": _queue(workflow=workflow),
            }
        )
    return lines
