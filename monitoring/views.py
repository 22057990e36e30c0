"""The monitoring pages: an overview of every workflow, and one dashboard per workflow.

Every chart is also a table (readable without JavaScript); the charts are drawn by a
static script (``monitoring/dashboard.js``, Chart.js) from a ``json_script`` element,
so the strict Content Security Policy holds. Acknowledging or resolving an alert, and
arming the alert actions, post back to the page and call the same services as the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.types import AuthenticatedHttpRequest
from automation.models import ACTIVE_ALERT_STATES, Alert
from automation.services import alert_acknowledge, alert_resolve
from inference.measure import INPUT_METRICS
from kernel.errors import DomainError, Forbidden, NotFound
from modelops.selectors import versions_of_workflow
from monitoring.forms import ACTION_LABELS, AlertActionsForm
from monitoring.inputs import RANGES, series_query
from monitoring.selectors import monitoring_settings_of
from monitoring.series import (
    BUCKETS,
    FALLBACK_KINDS,
    STAGES,
    monitoring_overview,
    monitoring_series,
)
from monitoring.services import ACTION_FIELDS, monitoring_settings_update
from workflows.access import access_workflow, has_right, workflows_visible
from workflows.models import Workflow


def _workflow(request: HttpRequest, slug: str) -> Workflow:
    try:
        return access_workflow(request.user, slug)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def monitoring_index(request: HttpRequest) -> HttpResponse:
    """Every workflow the user belongs to: drift state, active alerts, queue."""
    workflows = list(workflows_visible(request.user).order_by("slug"))
    return render(
        request,
        "monitoring/index.html",
        {"lines": monitoring_overview(workflows=workflows)},
    )


def _rows(series: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for index, start in enumerate(series["buckets"]):
        rows.append(
            {
                "start": start,
                "volume": series["volume"][index],
                "automation_rate": series["automation_rate"][index],
                "human": series["human_decisions"][index],
                "override": series["human_override_rate"][index],
                "errors": {k: v[index] for k, v in series["stage_errors"].items()},
                "latency": {stage: series["latency"][stage][index] for stage in STAGES},
                "model_ms": series["model_latency_ms"][index],
                "inputs": {name: series["inputs"][name][index] for name in INPUT_METRICS},
                "mix": series["class_mix"]["counts"][index],
                "histogram": series["confidence_histogram"]["counts"][index],
            }
        )
    return [row for row in rows if row["volume"] or any(row["mix"]) or row["model_ms"]["n"]]


def _deadline_rows(series: dict[str, Any]) -> list[dict[str, Any]]:
    """The buckets in which a deadline passed undecided or a fallback was applied."""
    deadlines = series["deadlines"]
    rows = [
        {
            "start": start,
            "missed": deadlines["missed"][index],
            "fallbacks": [deadlines["fallbacks"][kind][index] for kind in FALLBACK_KINDS],
        }
        for index, start in enumerate(series["buckets"])
    ]
    return [row for row in rows if row["missed"] or any(row["fallbacks"])]


def _chart_data(series: dict[str, Any]) -> dict[str, Any]:
    """The JSON the script draws from: plain numbers and ISO times."""
    return {
        "buckets": [start.isoformat() for start in series["buckets"]],
        "volume": series["volume"],
        "automation_rate": series["automation_rate"],
        "human_decisions": series["human_decisions"],
        "latency": {stage: [cell["p50"] for cell in series["latency"][stage]] for stage in STAGES},
        "model_ms": [cell["p50"] for cell in series["model_latency_ms"]],
        "inputs": {
            name: [cell["mean"] for cell in series["inputs"][name]] for name in INPUT_METRICS
        },
        "reference": series["reference"]["metrics"],
        "mix_labels": series["class_mix"]["labels"],
        "mix": series["class_mix"]["counts"],
        "histogram_edges": series["confidence_histogram"]["edges"],
        "histogram": [
            sum(column) for column in zip(*series["confidence_histogram"]["counts"], strict=False)
        ],
        "deadline_missed": series["deadlines"]["missed"],
        "fallbacks": series["deadlines"]["fallbacks"],
        "accuracy": [
            {**cell, "bucket": cell["bucket"].isoformat()} for cell in series["audited_accuracy"]
        ],
        "estimate": [
            {"at": cell["at"].isoformat(), "estimate": cell.get("estimate")}
            for cell in series["label_free_estimate"]
        ],
    }


@login_required
@require_http_methods(["GET", "POST"])
def monitoring_page(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    workflow = _workflow(request, slug)
    is_admin = has_right(request.user, workflow, "can_admin")
    if request.method == "POST" and request.POST.get("form") == "alert_actions":
        if not is_admin:
            raise PermissionDenied("only a workflow admin may change the alert actions")
        form = AlertActionsForm(request.POST)
        if form.is_valid():
            try:
                monitoring_settings_update(
                    workflow=workflow, actor=request.user, changes=dict(form.cleaned_data)
                )
                messages.success(request, "Alert actions saved.")
            except DomainError as exc:
                messages.error(request, exc.message)
        return redirect(request.get_full_path())
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("only a workflow admin may acknowledge or resolve alerts")
        raw = request.POST.get("alert", "")
        alert = (
            Alert.objects.filter(pk=int(raw), workflow=workflow).first()
            if raw.isdigit() and len(raw) < 12
            else None
        )
        if alert is None:
            messages.error(request, "No such alert in this workflow.")
            return redirect(request.get_full_path())
        service = alert_resolve if request.POST.get("action") == "resolve" else alert_acknowledge
        try:
            service(alert=alert, actor=request.user, note=request.POST.get("note", ""))
            messages.success(request, f"Alert {alert.pk} {alert_state_word(service)}.")
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect(request.get_full_path())
    error = ""
    try:
        query = series_query(request.GET)
    except DomainError as exc:
        error = exc.message
        query = series_query({})
    series = monitoring_series(workflow=workflow, query=query)
    versions = list(versions_of_workflow(workflow_id=workflow.pk)[:50])
    settings_row = monitoring_settings_of(workflow=workflow)
    actions_form = AlertActionsForm(
        initial={name: getattr(settings_row, name) for name in ACTION_FIELDS}
    )
    return render(
        request,
        "monitoring/page.html",
        {
            "workflow": workflow,
            "is_admin": is_admin,
            "series": series,
            "rows": _rows(series),
            "deadline_rows": _deadline_rows(series),
            "fallback_kinds": FALLBACK_KINDS,
            "chart_data": _chart_data(series),
            "ranges": list(RANGES),
            "buckets": list(BUCKETS),
            "selected_range": request.GET.get("range", "24h"),
            "versions": versions,
            "query": query,
            "error": error,
            "input_metrics": INPUT_METRICS,
            "stages": STAGES,
            "active_states": [state.value for state in ACTIVE_ALERT_STATES],
            "actions_form": actions_form,
            "actions_on": [
                ACTION_LABELS[name] for name in ACTION_FIELDS if getattr(settings_row, name)
            ],
        },
    )


def alert_state_word(service: Any) -> str:
    return "resolved" if service is alert_resolve else "acknowledged"
