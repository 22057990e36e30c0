"""Comparing two model versions on the same human-labelled cases (a read; no writes).

Only cases both versions scored and a human labelled count, so the comparison is paired:
the same images, the same ground truth. Gold cases are left out (they measure
reviewers), and so is any case either version was trained or validated on (the split
recorded on its training run), so a retrained version is never judged on its own
training data. The verdict comes from the exact McNemar test on the discordant cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from decisions.stats import (
    ClassMetrics,
    Interval,
    McNemarResult,
    ReliabilityBin,
    clopper_pearson,
    confusion_matrix,
    expected_calibration_error,
    mcnemar_exact,
    per_class_metrics,
    reliability_bins,
)
from modelops.conf import modelops_setting
from modelops.models import ModelVersion, TrainingRun
from workflows.models import Case, Prediction, Workflow

CONFIDENCE = 0.95
ALPHA = 0.05


class LatencyData(TypedDict):
    mean: float | None
    p50: float | None
    p95: float | None
    n: int


class AccuracyData(TypedDict):
    estimate: float | None
    low: float
    high: float
    correct: int
    n: int
    confidence: float


class ClassMetricsData(TypedDict):
    label: str
    precision: float
    recall: float
    support: int


class ReliabilityData(TypedDict):
    low: float
    high: float
    mean_confidence: float
    accuracy: float
    count: int


class VersionMetricsData(TypedDict):
    model_version: str
    model_version_id: int
    accuracy: AccuracyData
    per_class: list[ClassMetricsData]
    confusion: list[list[int]]
    reliability: list[ReliabilityData]
    expected_calibration_error: float
    latency_ms: LatencyData


class McNemarData(TypedDict):
    baseline_only_correct: int
    challenger_only_correct: int
    p_value: float
    alpha: float


class ComparisonData(TypedDict):
    """``GET .../models/compare/``: the public contract of a comparison."""

    labels: list[str]
    n_cases: int
    excluded_training_cases: int
    baseline: VersionMetricsData
    challenger: VersionMetricsData
    mcnemar: McNemarData
    min_cases: int
    verdict: str
    verdict_text: str


@dataclass(frozen=True)
class PairedCase:
    case_id: str
    human_label: str
    baseline_label: str
    baseline_confidence: float
    baseline_latency_ms: float | None
    challenger_label: str
    challenger_confidence: float
    challenger_latency_ms: float | None


@dataclass(frozen=True)
class VersionMetrics:
    """One version's results on the paired cases."""

    model_version_id: int
    tag: str
    accuracy: Interval
    per_class: tuple[ClassMetrics, ...]
    confusion: tuple[tuple[int, ...], ...]
    reliability: tuple[ReliabilityBin, ...]
    calibration_error: float
    latency_ms: LatencyData

    def as_dict(self) -> VersionMetricsData:
        return {
            "model_version": self.tag,
            "model_version_id": self.model_version_id,
            "accuracy": {
                "estimate": self.accuracy.estimate if self.accuracy.n else None,
                "low": self.accuracy.low,
                "high": self.accuracy.high,
                "correct": self.accuracy.successes,
                "n": self.accuracy.n,
                "confidence": self.accuracy.confidence,
            },
            "per_class": [
                {
                    "label": item.label,
                    "precision": item.precision,
                    "recall": item.recall,
                    "support": item.support,
                }
                for item in self.per_class
            ],
            "confusion": [list(row) for row in self.confusion],
            "reliability": [
                {
                    "low": item.low,
                    "high": item.high,
                    "mean_confidence": item.mean_confidence,
                    "accuracy": item.accuracy,
                    "count": item.count,
                }
                for item in self.reliability
            ],
            "expected_calibration_error": self.calibration_error,
            "latency_ms": self.latency_ms,
        }


@dataclass(frozen=True)
class Comparison:
    """Baseline (usually serving) against challenger (shadow or canary) on paired cases.

    ``verdict`` is one of ``challenger_better``, ``baseline_better``, ``no_difference``
    or ``not_enough_data``; ``verdict_text`` says it in words with the numbers.
    """

    labels: tuple[str, ...]
    baseline: VersionMetrics
    challenger: VersionMetrics
    n_cases: int
    excluded_training_cases: int
    mcnemar: McNemarResult
    alpha: float
    min_cases: int
    verdict: str
    verdict_text: str

    def as_dict(self) -> ComparisonData:
        return {
            "labels": list(self.labels),
            "n_cases": self.n_cases,
            "excluded_training_cases": self.excluded_training_cases,
            "baseline": self.baseline.as_dict(),
            "challenger": self.challenger.as_dict(),
            "mcnemar": {
                "baseline_only_correct": self.mcnemar.b,
                "challenger_only_correct": self.mcnemar.c,
                "p_value": self.mcnemar.p_value,
                "alpha": self.alpha,
            },
            "min_cases": self.min_cases,
            "verdict": self.verdict,
            "verdict_text": self.verdict_text,
        }


def training_case_ids(versions: Sequence[ModelVersion]) -> set[str]:
    """Case ids the versions were trained or validated on (from their training runs)."""
    ids: set[str] = set()
    runs = TrainingRun.objects.filter(result_version__in=versions).values_list("split", flat=True)
    for split in runs:
        for part in ("train", "val"):
            ids.update(str(case_id) for case_id in (split or {}).get(part, []))
    return ids


def training_groups(case_ids: set[str]) -> set[str]:
    """The duplicate groups (first case's id) of ``case_ids``: a repeated image of a
    training case is a training image too."""
    groups = set(case_ids)
    rows = Case.objects.filter(pk__in=case_ids, duplicate_of__isnull=False).values_list(
        "duplicate_of_id", flat=True
    )
    groups.update(str(root) for root in rows)
    return groups


def paired_cases(
    *, workflow: Workflow, baseline: ModelVersion, challenger: ModelVersion
) -> tuple[list[PairedCase], int]:
    """Cases of ``workflow`` a human labelled and both versions scored, oldest label first,
    and how many were left out because a version trained on them.

    A repeated image counts once (its first labelled case), and is left out with its
    whole duplicate group when any image of the group was trained or validated on."""
    rows = (
        Prediction.objects.filter(
            case__workflow=workflow,
            case__is_gold=False,
            model_version__in=[baseline, challenger],
        )
        .exclude(case__human_label="")
        .order_by("case__labelled_at", "case_id")
        .values_list(
            "case_id",
            "case__human_label",
            "model_version_id",
            "label",
            "confidence",
            "latency_ms",
            "case__duplicate_of_id",
        )
    )
    by_case: dict[str, dict[int, tuple[str, float, float | None]]] = {}
    truth: dict[str, str] = {}
    group_of: dict[str, str] = {}
    for case_uuid, human_label, version_id, label, confidence, latency, root in rows:
        key = str(case_uuid)
        by_case.setdefault(key, {})[version_id] = (label, confidence, latency)
        truth[key] = human_label
        group_of[key] = str(root) if root else key
    excluded = training_groups(training_case_ids([baseline, challenger]))
    seen_groups: set[str] = set()
    labels = set(workflow.labels)
    pairs: list[PairedCase] = []
    left_out = 0
    for case_id, scored in by_case.items():
        if baseline.pk not in scored or challenger.pk not in scored:
            continue
        if truth[case_id] not in labels:
            continue
        if group_of[case_id] in excluded:
            left_out += 1
            continue
        if group_of[case_id] in seen_groups:
            continue
        seen_groups.add(group_of[case_id])
        base, chal = scored[baseline.pk], scored[challenger.pk]
        pairs.append(
            PairedCase(
                case_id=case_id,
                human_label=truth[case_id],
                baseline_label=base[0],
                baseline_confidence=base[1],
                baseline_latency_ms=base[2],
                challenger_label=chal[0],
                challenger_confidence=chal[1],
                challenger_latency_ms=chal[2],
            )
        )
    return pairs, left_out


def _latency(values: Sequence[float | None]) -> LatencyData:
    known = np.asarray([value for value in values if value is not None], dtype=float)
    if not known.size:
        return {"mean": None, "p50": None, "p95": None, "n": 0}
    return {
        "mean": float(known.mean()),
        "p50": float(np.percentile(known, 50)),
        "p95": float(np.percentile(known, 95)),
        "n": int(known.size),
    }


def version_metrics(
    *,
    version: ModelVersion,
    labels: Sequence[str],
    truth: Sequence[str],
    predicted: Sequence[str],
    confidences: Sequence[float],
    latencies: Sequence[float | None],
) -> VersionMetrics:
    correct = [p == t for p, t in zip(predicted, truth, strict=True)]
    return VersionMetrics(
        model_version_id=version.pk,
        tag=version.tag,
        accuracy=clopper_pearson(sum(correct), len(correct), CONFIDENCE),
        per_class=tuple(per_class_metrics(truth, predicted, labels)),
        confusion=tuple(tuple(row) for row in confusion_matrix(truth, predicted, labels)),
        reliability=tuple(reliability_bins(confidences, correct)),
        calibration_error=expected_calibration_error(confidences, correct),
        latency_ms=_latency(latencies),
    )


def versions_compare(
    *, workflow: Workflow, baseline: ModelVersion, challenger: ModelVersion
) -> Comparison:
    """The paired comparison of ``challenger`` against ``baseline`` on this workflow's cases."""
    pairs, left_out = paired_cases(workflow=workflow, baseline=baseline, challenger=challenger)
    labels = tuple(workflow.labels)
    truth = [p.human_label for p in pairs]
    base = version_metrics(
        version=baseline,
        labels=labels,
        truth=truth,
        predicted=[p.baseline_label for p in pairs],
        confidences=[p.baseline_confidence for p in pairs],
        latencies=[p.baseline_latency_ms for p in pairs],
    )
    chal = version_metrics(
        version=challenger,
        labels=labels,
        truth=truth,
        predicted=[p.challenger_label for p in pairs],
        confidences=[p.challenger_confidence for p in pairs],
        latencies=[p.challenger_latency_ms for p in pairs],
    )
    test = mcnemar_exact(
        [p.baseline_label == p.human_label for p in pairs],
        [p.challenger_label == p.human_label for p in pairs],
        alpha=ALPHA,
    )
    min_cases = modelops_setting("LOOPGATE_COMPARE_MIN_CASES")
    verdict, text = _verdict(base, chal, test, len(pairs), min_cases)
    return Comparison(
        labels=labels,
        baseline=base,
        challenger=chal,
        n_cases=len(pairs),
        excluded_training_cases=left_out,
        mcnemar=test,
        alpha=ALPHA,
        min_cases=min_cases,
        verdict=verdict,
        verdict_text=text,
    )


def _verdict(
    base: VersionMetrics, chal: VersionMetrics, test: McNemarResult, n: int, min_cases: int
) -> tuple[str, str]:
    accuracies = (
        f"{chal.tag} {chal.accuracy.successes}/{n} right, {base.tag} {base.accuracy.successes}/{n}"
    )
    discordant = (
        f"{test.c} cases only {chal.tag} got right, {test.b} only {base.tag} got right; "
        f"exact McNemar p = {test.p_value:.3g}"
    )
    if n < min_cases:
        return (
            "not_enough_data",
            f"Not enough evidence yet: {n} paired labelled cases, at least {min_cases} are "
            f"needed for a verdict ({accuracies}).",
        )
    if test.better == "b":
        return (
            "challenger_better",
            f"{chal.tag} is better than {base.tag} on the same {n} labelled cases "
            f"({accuracies}; {discordant} < {ALPHA}).",
        )
    if test.better == "a":
        return (
            "baseline_better",
            f"{base.tag} is better than {chal.tag}: keep it serving ({accuracies}; "
            f"{discordant} < {ALPHA}).",
        )
    return (
        "no_difference",
        f"No significant difference on {n} labelled cases ({accuracies}; {discordant} "
        f">= {ALPHA}). More labels may settle it.",
    )
