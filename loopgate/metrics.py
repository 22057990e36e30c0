"""Prometheus metrics, read from the database at scrape time.

The database is the one place every web process and worker writes to, so gauges
computed from it are the same whichever process is scraped.

The metrics name every workflow and its volumes, so they are not public: a scraper
sends ``Authorization: Bearer <LOOPGATE_METRICS_TOKEN>``, or a staff member reads them
in the browser through the session.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Avg, Count, F, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

RECENT = timedelta(hours=1)


class LoopgateCollector:
    def collect(self) -> Iterator[Metric]:
        from review.models import ReviewTask
        from workflows.models import Case, Prediction, Workflow

        slugs = dict(Workflow.objects.values_list("pk", "slug"))
        cases = GaugeMetricFamily(
            "loopgate_cases", "Cases by workflow and status.", labels=["workflow", "status"]
        )
        for case_row in Case.objects.values("workflow_id", "status").annotate(n=Count("id")):
            cases.add_metric([slugs[case_row["workflow_id"]], case_row["status"]], case_row["n"])
        yield cases

        decisions = GaugeMetricFamily(
            "loopgate_decisions", "Decided cases by source.", labels=["workflow", "source"]
        )
        for decision_row in (
            Case.objects.exclude(decision_source="")
            .values("workflow_id", "decision_source")
            .annotate(n=Count("id"))
        ):
            decisions.add_metric(
                [slugs[decision_row["workflow_id"]], decision_row["decision_source"]],
                decision_row["n"],
            )
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
        for task_row in (
            ReviewTask.objects.filter(status="open")
            .exclude(kind="gold")
            .values("workflow_id")
            .annotate(n=Count("id"), oldest=Min("created_at"))
        ):
            slug = slugs[task_row["workflow_id"]]
            depth.add_metric([slug], task_row["n"])
            age.add_metric([slug], (now - task_row["oldest"]).total_seconds())
        yield depth
        yield age

        since = now - RECENT
        latency = GaugeMetricFamily(
            "loopgate_model_latency_ms_avg",
            "Mean model latency per case over the last hour.",
            labels=["workflow", "model_version", "role"],
        )
        for prediction_row in (
            Prediction.objects.filter(created_at__gte=since)
            .values("case__workflow_id", "model_version__name", "model_version__version", "role")
            .annotate(ms=Avg("latency_ms"))
        ):
            latency.add_metric(
                [
                    slugs[prediction_row["case__workflow_id"]],
                    f"{prediction_row['model_version__name']}:v{prediction_row['model_version__version']}",
                    prediction_row["role"],
                ],
                prediction_row["ms"] or 0.0,
            )
        yield latency

        decision_latency = GaugeMetricFamily(
            "loopgate_model_decision_latency_seconds_avg",
            "Mean seconds from receipt to a model decision over the last hour.",
            labels=["workflow"],
        )
        for timing_row in (
            Case.objects.filter(decision_source="model", decided_at__gte=since)
            .values("workflow_id")
            .annotate(seconds=Avg(F("decided_at") - F("created_at")))
        ):
            value = timing_row["seconds"]
            seconds = (
                value.total_seconds() if isinstance(value, timedelta) else float(value or 0) / 1e6
            )
            decision_latency.add_metric([slugs[timing_row["workflow_id"]]], seconds)
        yield decision_latency


class _ProcessInstruments:
    """This process's pipeline instruments (``monitoring.metrics``), without multiprocess
    mode: the default registry's ``loopgate_*`` families."""

    def collect(self) -> Iterator[Metric]:
        for family in REGISTRY.collect():
            if family.name.startswith("loopgate_"):
                yield family


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": code, "message": message, "field": None}}, status=status
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def access_metrics(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read the metrics, else the refusal to send.

    A bearer token is compared in constant time with ``LOOPGATE_METRICS_TOKEN`` (when that
    is unset, no token is accepted); without one, a staff or superuser session is needed.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer":
        expected = settings.LOOPGATE_METRICS_TOKEN
        if expected and hmac.compare_digest(presented.strip().encode(), expected.encode()):
            return None
        return _error(401, "authentication_failed", "Invalid metrics token.")
    user = request.user
    if not user.is_authenticated:
        return _error(
            401,
            "not_authenticated",
            "Send 'Authorization: Bearer <LOOPGATE_METRICS_TOKEN>', or log in as staff.",
        )
    if not (user.is_staff or user.is_superuser):
        return _error(403, "permission_denied", "Only staff may read the metrics.")
    return None


def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = access_metrics(request)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry()
    registry.register(LoopgateCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The pipeline's histograms and counters, summed over every process of this host.
        MultiProcessCollector(registry)
    else:
        import monitoring.metrics  # noqa: F401 - define the instruments in this process

        registry.register(_ProcessInstruments())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
