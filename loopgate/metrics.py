"""Prometheus metrics, read from the database at scrape time.

The database is the one place every web process and worker writes to, so gauges
computed from it are the same whichever process is scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Avg, Count, F, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

RECENT = timedelta(hours=1)


class LoopgateCollector:
    def collect(self) -> Iterator[Metric]:
        from review.models import ReviewTask
        from workflows.models import Case, Prediction, Workflow

        slugs = dict(Workflow.objects.values_list("pk", "slug"))
        cases = GaugeMetricFamily(
            "loopgate_cases", "Cases by workflow and status.", labels=["workflow", "status"]
        )
        for row in Case.objects.values("workflow_id", "status").annotate(n=Count("id")):
            cases.add_metric([slugs[row["workflow_id"]], row["status"]], row["n"])
        yield cases

        decisions = GaugeMetricFamily(
            "loopgate_decisions", "Decided cases by source.", labels=["workflow", "source"]
        )
        for row in (
            Case.objects.exclude(decision_source="")
            .values("workflow_id", "decision_source")
            .annotate(n=Count("id"))
        ):
            decisions.add_metric([slugs[row["workflow_id"]], row["decision_source"]], row["n"])
        yield decisions

        depth = GaugeMetricFamily(
            "loopgate_review_queue_depth", "Open review tasks.", labels=["workflow"]
        )
        age = GaugeMetricFamily(
            "loopgate_review_queue_oldest_age_seconds",
            "Age of the oldest open review task.",
            labels=["workflow"],
        )
        now = timezone.now()
        for row in (
            ReviewTask.objects.filter(status="open")
            .exclude(kind="gold")
            .values("workflow_id")
            .annotate(n=Count("id"), oldest=Min("created_at"))
        ):
            slug = slugs[row["workflow_id"]]
            depth.add_metric([slug], row["n"])
            age.add_metric([slug], (now - row["oldest"]).total_seconds())
        yield depth
        yield age

        since = now - RECENT
        latency = GaugeMetricFamily(
            "loopgate_model_latency_ms_avg",
            "Mean model latency per case over the last hour.",
            labels=["workflow", "model_version", "role"],
        )
        for row in (
            Prediction.objects.filter(created_at__gte=since)
            .values("case__workflow_id", "model_version__name", "model_version__version", "role")
            .annotate(ms=Avg("latency_ms"))
        ):
            latency.add_metric(
                [
                    slugs[row["case__workflow_id"]],
                    f"{row['model_version__name']}:v{row['model_version__version']}",
                    row["role"],
                ],
                row["ms"] or 0.0,
            )
        yield latency

        decision_latency = GaugeMetricFamily(
            "loopgate_model_decision_latency_seconds_avg",
            "Mean seconds from receipt to a model decision over the last hour.",
            labels=["workflow"],
        )
        for row in (
            Case.objects.filter(decision_source="model", decided_at__gte=since)
            .values("workflow_id")
            .annotate(seconds=Avg(F("decided_at") - F("created_at")))
        ):
            value = row["seconds"]
            seconds = (
                value.total_seconds() if isinstance(value, timedelta) else float(value or 0) / 1e6
            )
            decision_latency.add_metric([slugs[row["workflow_id"]]], seconds)
        yield decision_latency


def metrics_view(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    registry.register(LoopgateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
