"""Prometheus instruments of the pipeline, correct across several processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (the demo and the deployment docs set it, one
empty folder per host, cleared at start), every gunicorn and Celery process writes its
samples to files there and ``/metrics`` (``loopgate.metrics``) sums them with
``prometheus_client.multiprocess.MultiProcessCollector``. Without it, the instruments
are per process (fine for a single process, and for the tests).
"""

from __future__ import annotations

import os
import resource
import sys
from collections import Counter as Tally
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import transaction
from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from workflows.models import Case

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
MODEL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

STAGE_SECONDS = Histogram(
    "loopgate_stage_seconds",
    "Seconds a case spent in a pipeline stage (queue_wait, model, routing, to_routed).",
    ["workflow", "stage"],
    buckets=STAGE_BUCKETS,
)
MODEL_SECONDS = Histogram(
    "loopgate_model_seconds",
    "Model time per case (a batch's forward pass divided by its size).",
    ["workflow", "model_version"],
    buckets=MODEL_BUCKETS,
)
CASES_ROUTED = Counter(
    "loopgate_cases_routed",
    "Cases routed by a worker, by outcome (model, review, failed).",
    ["workflow", "outcome"],
)
DECIDED = Counter(
    "loopgate_decided",
    "Cases decided, by source (model, human, fallback), counted once the decision commits.",
    ["workflow", "source"],
)
STAGE_ERRORS = Counter(
    "loopgate_stage_errors",
    "Errors by pipeline stage (decode: image unreadable; scoring: model failed).",
    ["workflow", "stage"],
)
DEADLINE_FALLBACKS = Counter(
    "loopgate_deadline_fallbacks",
    "Cases still waiting for a human when their deadline passed, by the fallback the "
    "workflow applied (label, model, escalate, none).",
    ["workflow", "fallback"],
)
WORKER_MEMORY = Gauge(
    "loopgate_worker_memory_bytes",
    "Peak resident memory of each worker process.",
    ["pid"],
    multiprocess_mode="liveall",
)
GPU_MEMORY = Gauge(
    "loopgate_worker_gpu_memory_bytes",
    "GPU memory allocated by each worker process (absent without a GPU).",
    ["pid", "device"],
    multiprocess_mode="liveall",
)


def _seconds(later: Any, earlier: Any) -> float | None:
    if later is None or earlier is None:
        return None
    return float(max((later - earlier).total_seconds(), 0.0))


def batch_observe(*, rows: Sequence[Any], routed_at: Any) -> None:
    """Record a routed batch (``monitoring.services.CaseMeasurementInput`` rows)."""
    for row in rows:
        slug = row.extra.get("workflow", str(row.workflow_id))
        stages = {
            "queue_wait": _seconds(row.scoring_started_at, row.received_at),
            "model": _seconds(row.scored_at, row.scoring_started_at),
            "routing": _seconds(routed_at, row.scored_at or row.scoring_started_at),
            "to_routed": _seconds(routed_at, row.received_at),
        }
        for stage, value in stages.items():
            if value is not None:
                STAGE_SECONDS.labels(slug, stage).observe(value)
        if row.error_stage:
            STAGE_ERRORS.labels(slug, row.error_stage).inc()
        outcome = row.extra.get("outcome", "")
        if outcome:
            CASES_ROUTED.labels(slug, outcome).inc()
    process_observe()


def model_observe(*, slug: str, version: str, seconds_per_case: float, cases: int) -> None:
    histogram = MODEL_SECONDS.labels(slug, version)
    for _ in range(cases):
        histogram.observe(seconds_per_case)


def process_observe() -> None:
    """This process's peak memory, and its GPU memory when torch sees a GPU."""
    pid = str(os.getpid())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    WORKER_MEMORY.labels(pid).set(peak if sys.platform == "darwin" else peak * 1024)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            GPU_MEMORY.labels(pid, str(index)).set(torch.cuda.memory_allocated(index))


_slugs: dict[int, str] = {}


def _slug_of(workflow_id: int) -> str:
    """The workflow's slug (the label every instrument uses), cached per process: a
    slug never changes once the workflow exists."""
    if workflow_id not in _slugs:
        from workflows.models import Workflow

        slug = Workflow.objects.filter(pk=workflow_id).values_list("slug", flat=True).first()
        _slugs[workflow_id] = slug or str(workflow_id)
    return _slugs[workflow_id]


def decisions_count(*, cases: Sequence[Case], from_statuses: Sequence[str], to_status: str) -> None:
    """The ``workflows.hooks.on_case_moved`` hook: count the cases that were decided.

    Every route to ``decided`` passes here (the model's routing in the worker, a verdict
    or an adjudication in a web process, a deadline fallback), so the counter sees
    human decisions too. It counts after the move commits, never for one rolled back;
    a decision later undone stays counted (a counter only grows). Each process counts
    its own; in multiprocess mode ``/metrics`` sums them.
    """
    if to_status != "decided" or not cases:
        return
    tally = Tally((case.workflow_id, case.decision_source or "unknown") for case in cases)

    def count() -> None:
        for (workflow_id, source), n in tally.items():
            DECIDED.labels(_slug_of(workflow_id), source).inc(n)

    transaction.on_commit(count)
