"""The automation page: the policy, its evidence, the threshold curve, the log, alerts.

Session login and CSRF; the forms post back to the page and call the same services as
the API (same permission checks, same evidence gate, same audit-log entry).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.types import AuthenticatedHttpRequest
from automation.charts import risk_coverage_chart
from automation.forms import (
    LEVEL_LABELS,
    PolicyForm,
    ThresholdApplyForm,
    ThresholdCostForm,
)
from automation.inputs import costs_from, threshold_defaults
from automation.models import AlertState
from automation.presenters import overview_view, threshold_report_view, version_evidence_view
from automation.selectors import alerts_of, evidence_by_version
from automation.services import (
    automation_status,
    automation_threshold_apply,
    automation_update,
    threshold_advice,
)
from decisions.routing import Level
from kernel.errors import DomainError, Forbidden, NotFound
from workflows.access import access_workflow, has_right, workflows_visible
from workflows.models import Workflow

ACTION_POLICY = "policy"
ACTION_APPLY = "apply-threshold"


def _admin_workflow(request: HttpRequest, slug: str) -> Workflow:
    try:
        return access_workflow(request.user, slug, "can_admin")
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def automation_index(request: HttpRequest) -> HttpResponse:
    """The workflows whose automation the user may steer; archived ones are left out."""
    workflows = [
        workflow
        for workflow in workflows_visible(request.user)
        .filter(archived_at__isnull=True)
        .order_by("slug")
        if has_right(request.user, workflow, "can_admin")
    ]
    return render(
        request,
        "automation/index.html",
        {"workflows": workflows, "level_labels": _level_labels()},
    )


def _level_labels() -> dict[str, str]:
    return {level.value: text for level, text in LEVEL_LABELS.items()}


@login_required
@require_http_methods(["GET", "POST"])
def automation_page(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    allow_override = bool(getattr(request.user, "is_superuser", False))
    action = request.POST.get("action") if request.method == "POST" else None
    status = 200

    threshold_query = ThresholdCostForm(request.GET or None)
    asked = threshold_query.cleaned_data if threshold_query.is_valid() else {}
    target_error, confidence = threshold_defaults(workflow, asked)
    costs = None
    try:
        costs = costs_from(workflow, asked)
    except DomainError as exc:
        threshold_query.add_error(None, exc.message)

    policy_form = PolicyForm(
        request.POST if action == ACTION_POLICY else None,
        workflow=workflow,
        allow_override=allow_override,
    )
    apply_form = ThresholdApplyForm(
        request.POST if action == ACTION_APPLY else None,
        prefix="apply",
        initial={"target_error": target_error, "confidence": confidence},
    )

    if action == ACTION_POLICY:
        status = _policy_submit(request, workflow, policy_form)
    elif action == ACTION_APPLY:
        status = _threshold_submit(request, workflow, apply_form)
    elif action is not None:
        messages.error(request, "Unknown action.")
        status = 400
    if status == 302:
        return redirect(request.get_full_path())

    if not threshold_query.is_bound:
        threshold_query = ThresholdCostForm(
            initial={"target_error": target_error, "confidence": confidence}
        )
    report = threshold_report_view(
        threshold_advice(
            workflow=workflow, target_error=target_error, confidence=confidence, costs=costs
        )
    )
    chart = risk_coverage_chart(
        report["curve"],
        target_error=target_error,
        current=report["current"]["point"],
        recommended=report["recommendation"],
    )
    context: dict[str, Any] = {
        "workflow": workflow,
        "overview": overview_view(automation_status(workflow=workflow)),
        "versions": version_evidence_view(evidence_by_version(workflow=workflow), workflow.labels),
        "report": report,
        "table_points": [p for p in report["curve"] if round(p["threshold"] * 100) % 5 == 0],
        "chart": chart,
        "policy_form": policy_form,
        "threshold_query": threshold_query,
        "apply_form": apply_form,
        "alerts": alerts_of(workflow=workflow, limit=20),
        "firing": AlertState.FIRING.value,
        "level_labels": _level_labels(),
        "levels": [level.value for level in Level],
        "api_url": reverse("workflow-automation", args=[workflow.slug]),
    }
    return render(request, "automation/page.html", context, status=status)


def _policy_submit(request: AuthenticatedHttpRequest, workflow: Workflow, form: PolicyForm) -> int:
    """Apply the policy form; 302 on success, else the status to render the page with."""
    if not form.is_valid():
        return 400
    changes = form.changes()
    if not changes:
        form.add_error(None, "Nothing changed: the policy already has these values.")
        return 400
    try:
        change = automation_update(
            workflow=workflow,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            changes=changes,
            override=bool(form.cleaned_data.get("override")),
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        return exc.status_code
    text = f"Saved: {', '.join(sorted(changes))} changed."
    if change.overridden:
        text += " The evidence gate was overridden; this is logged."
    messages.success(request, text)
    return 302


def _threshold_submit(
    request: AuthenticatedHttpRequest, workflow: Workflow, form: ThresholdApplyForm
) -> int:
    if not form.is_valid():
        return 400
    try:
        change = automation_threshold_apply(
            workflow=workflow,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            target_error=form.cleaned_data["target_error"],
            confidence=form.cleaned_data["confidence"],
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        return exc.status_code
    messages.success(
        request,
        f"Threshold set to {change.after['confidence_threshold']:.4g} "
        f"(was {change.before['confidence_threshold']:.4g}).",
    )
    return 302
