"""Pages of the model lifecycle: the models page of a workflow and the comparison page.

Forms post to small action views that call the same services as the API (same checks,
same audit entries) and come back to the page with a message. Training progress is
polled by the page's script through the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from accounts.types import AuthenticatedHttpRequest
from inference.sweep import MAX_TRIALS
from kernel.errors import DomainError, Forbidden, InvalidInput, NotFound
from modelops.access import access_models, access_training_run
from modelops.charts import confusion_svg, reliability_svg
from modelops.comparison import versions_compare
from modelops.inputs import (
    model_version_registration,
    retrain_rule_input,
    sweep_from_text,
    training_run_start_input,
)
from modelops.models import DeploymentRole, ModelSource, TrainingStatus
from modelops.retraining import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_SCRATCH_INPUT_SIZE,
    DEFAULT_TEST_SHARE,
    DEFAULT_VAL_SHARE,
    TrainingRequest,
    labelled_cases,
    retrain_rule_update,
    training_augmentation,
    training_run_cancel,
    training_run_start,
)
from modelops.selectors import (
    comparison_pair,
    deployment_events,
    deployments_active,
    retrain_rule_of,
    rollback_target,
    training_runs_of,
    version_of_workflow,
    versions_of_workflow,
)
from modelops.services import (
    REGISTRABLE_ARCHITECTURES,
    canary_share_update,
    deployment_create,
    deployment_end,
    deployment_promote,
    deployment_rollback,
    model_version_register,
)
from workflows.access import workflows_visible
from workflows.models import Workflow

BASELINE_COLOUR = "#5c6475"
CHALLENGER_COLOUR = "#2357d9"


def _admin_workflow(request: HttpRequest, slug: str) -> Workflow:
    try:
        return access_models(request.user, slug)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


def _page(slug: str) -> str:
    return reverse("modelops:workflow", args=[slug])


@login_required
def models_home(request: HttpRequest) -> HttpResponse:
    """The workflows the user administers, with what serves each."""
    rows = []
    for workflow in workflows_visible(request.user).order_by("slug"):
        try:
            access_models(request.user, workflow.slug)
        except DomainError:
            continue
        rows.append({"workflow": workflow, "active": deployments_active(workflow_id=workflow.pk)})
    return render(request, "modelops/home.html", {"rows": rows})


@login_required
def workflow_models(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    active = deployments_active(workflow_id=workflow.pk)
    roles_of = {d.model_version_id: role for role, d in active.items()}
    versions = list(versions_of_workflow(workflow_id=workflow.pk)[:100])
    runs = training_runs_of(workflow_id=workflow.pk)
    config = {
        "runUrl": reverse("training-run-detail", args=[0]),
        "activeRuns": [run.pk for run in runs if run.is_active],
    }
    return render(
        request,
        "modelops/workflow.html",
        {
            "workflow": workflow,
            "serving": active.get(DeploymentRole.SERVING),
            "shadow": active.get(DeploymentRole.SHADOW),
            "canary": active.get(DeploymentRole.CANARY),
            "rollback_target": rollback_target(workflow_id=workflow.pk),
            "versions": [(version, roles_of.get(version.pk)) for version in versions],
            "runs": runs,
            "rule": retrain_rule_of(workflow_id=workflow.pk),
            "events": deployment_events(workflow_id=workflow.pk, limit=50),
            "architectures": REGISTRABLE_ARCHITECTURES,
            "labels_text": ", ".join(workflow.labels),
            "labelled_count": len(labelled_cases(workflow=workflow)),
            "augmentation": training_augmentation(
                workflow=workflow, request=TrainingRequest()
            ).as_dict(),
            "scratch_input_size": DEFAULT_SCRATCH_INPUT_SIZE,
            "max_trials": MAX_TRIALS,
            "defaults": {
                "epochs": DEFAULT_EPOCHS,
                "lr": DEFAULT_LR,
                "batch_size": DEFAULT_BATCH_SIZE,
                "test_share": DEFAULT_TEST_SHARE,
                "val_share": DEFAULT_VAL_SHARE,
            },
            "config": config,
        },
    )


@login_required
def workflow_compare(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    versions = list(versions_of_workflow(workflow_id=workflow.pk)[:100])
    context: dict[str, Any] = {"workflow": workflow, "versions": versions}
    try:
        baseline, challenger = comparison_pair(
            workflow, request.GET.get("baseline"), request.GET.get("challenger")
        )
    except DomainError as exc:
        context["problem"] = exc.message
        return render(request, "modelops/compare.html", context)
    comparison = versions_compare(workflow=workflow, baseline=baseline, challenger=challenger)
    labels = comparison.labels
    context.update(
        {
            "baseline": baseline,
            "challenger": challenger,
            "comparison": comparison,
            "per_class": list(
                zip(comparison.baseline.per_class, comparison.challenger.per_class, strict=True)
            ),
            # Built from escaped strings in modelops.charts: safe to inline.
            "baseline_confusion": mark_safe(  # noqa: S308
                confusion_svg(labels, comparison.baseline.confusion, baseline.tag)
            ),
            "challenger_confusion": mark_safe(  # noqa: S308
                confusion_svg(labels, comparison.challenger.confusion, challenger.tag)
            ),
            "reliability": mark_safe(  # noqa: S308
                reliability_svg(
                    [
                        (baseline.tag, comparison.baseline.reliability, BASELINE_COLOUR),
                        (challenger.tag, comparison.challenger.reliability, CHALLENGER_COLOUR),
                    ],
                    "Reliability",
                )
            ),
        }
    )
    return render(request, "modelops/compare.html", context)


# --- Actions -------------------------------------------------------------------------------


def _act(
    request: HttpRequest, slug: str, action: Callable[[Workflow], str], *, anchor: str = ""
) -> HttpResponseRedirect:
    """Run one action for an admin of ``slug``; say what happened (or why not) on the page."""
    workflow = _admin_workflow(request, slug)
    try:
        messages.success(request, action(workflow))
    except DomainError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(_page(workflow.slug) + (f"#{anchor}" if anchor else ""))


def _float(value: str | None, field: str) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: a number is needed", field=field) from exc


def _int(value: str | None, field: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: a whole number is needed", field=field) from exc


def _require_confirmation(request: HttpRequest, what: str) -> None:
    """Promote and rollback change what decides cases: the form's confirm box must be
    ticked (the page's script ticks it when its dialog is confirmed)."""
    if request.POST.get("confirm") != "on":
        raise InvalidInput(f"Nothing changed: confirm that you want to {what}.", field="confirm")


@login_required
@require_POST
def register(request: AuthenticatedHttpRequest, slug: str) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        registration = model_version_registration({**request.POST.dict(), **request.FILES.dict()})
        version = model_version_register(
            workflow=workflow, actor=request.user, source=ModelSource.UI, **registration
        )
        return (
            f"Registered {version.tag} (sha256 {version.sha256[:12]}…); it passed the load check."
        )

    return _act(request, slug, action, anchor="versions")


@login_required
@require_POST
def deploy(request: AuthenticatedHttpRequest, slug: str) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        version = version_of_workflow(workflow, request.POST.get("model_version"), "model_version")
        role = request.POST.get("role", "")
        share = _float(request.POST.get("traffic_share"), "traffic_share")
        if role == DeploymentRole.CANARY and share is not None and share > 1:
            share = share / 100.0
        deployment_create(
            workflow=workflow,
            model_version=version,
            role=role,
            traffic_share=share,
            actor=request.user,
            reason=request.POST.get("reason", ""),
        )
        suffix = f" for {share:.0%} of cases" if role == DeploymentRole.CANARY and share else ""
        return f"{version.tag} is now the {role}{suffix}."

    return _act(request, slug, action)


@login_required
@require_POST
def promote(request: AuthenticatedHttpRequest, slug: str) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        role = request.POST.get("role", DeploymentRole.SHADOW)
        _require_confirmation(request, f"promote the {role} to serving")
        serving = deployment_promote(
            workflow=workflow,
            role=role,
            expected_version_id=_int(request.POST.get("model_version"), "model_version"),
            actor=request.user,
            reason=request.POST.get("reason", ""),
        )
        return (
            f"{serving.model_version.tag} is now serving. The automation level stays "
            f"{workflow.level}; the new version starts at the evidence it has."
        )

    return _act(request, slug, action)


@login_required
@require_POST
def rollback(request: AuthenticatedHttpRequest, slug: str) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        _require_confirmation(request, "roll back")
        serving = deployment_rollback(
            workflow=workflow, actor=request.user, reason=request.POST.get("reason", "")
        )
        return f"Rolled back: {serving.model_version.tag} is serving again."

    return _act(request, slug, action)


@login_required
@require_POST
def end(request: AuthenticatedHttpRequest, slug: str, role: str) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        deployment = deployment_end(
            workflow=workflow, role=role, actor=request.user, reason=request.POST.get("reason", "")
        )
        return f"{deployment.model_version.tag} is no longer the {role}."

    return _act(request, slug, action)


@login_required
@require_POST
def canary(request: AuthenticatedHttpRequest, slug: str) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        share = _float(request.POST.get("traffic_share"), "traffic_share")
        if share is None:
            raise InvalidInput("traffic_share: give the canary's share", field="traffic_share")
        if share > 1:
            share = share / 100.0
        deployment = canary_share_update(
            workflow=workflow,
            traffic_share=share,
            actor=request.user,
            reason=request.POST.get("reason", ""),
        )
        return f"The canary {deployment.model_version.tag} now decides {share:.0%} of cases."

    return _act(request, slug, action)


AUGMENTATION_NUMBERS = ("rotation", "brightness", "contrast", "colour", "crop")


def augmentation_from_post(post: Any) -> dict[str, Any]:
    """The training form's augmentation fields as the API's ``augmentation`` object."""
    chosen: dict[str, Any] = {
        "hflip": post.get("aug_hflip") == "on",
        "vflip": post.get("aug_vflip") == "on",
    }
    for name in AUGMENTATION_NUMBERS:
        raw = (post.get(f"aug_{name}") or "0").strip()
        try:
            chosen[name] = float(raw)
        except ValueError:
            chosen[name] = raw  # refused with its name by the service
    return chosen


@login_required
@require_POST
def train(request: AuthenticatedHttpRequest, slug: str) -> HttpResponseRedirect:
    post = request.POST

    def action(workflow: Workflow) -> str:
        fields: dict[str, Any] = {
            key: value
            for key, value in post.dict().items()
            if not key.startswith(("aug_", "sweep_"))
        }
        fields["from_scratch"] = post.get("from_scratch") == "on"
        if post.get("aug_given") == "1":
            fields["augmentation"] = augmentation_from_post(post)
        fields["sweep"] = sweep_from_text(post.get("sweep_seeds"), post.get("sweep_lrs"))
        training, reason = training_run_start_input(fields)
        run = training_run_start(
            workflow=workflow, actor=request.user, request=training, reason=reason
        )
        trials = (run.hyperparameters.get("sweep") or {}).get("trials") or []
        sweep = f" (a sweep of {len(trials)} trials)" if trials else ""
        return f"Training run {run.pk}{sweep} is queued on the training workers."

    return _act(request, slug, action, anchor="retraining")


@login_required
@require_POST
def training_cancel(
    request: AuthenticatedHttpRequest, slug: str, run_id: str
) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        run = access_training_run(request.user, run_id)
        if run.workflow_id != workflow.pk:
            raise NotFound(f"training run {run_id} not found")
        run = training_run_cancel(run=run, actor=request.user)
        if run.status == TrainingStatus.CANCELLED:
            return f"Training run {run.pk} is cancelled."
        return f"Training run {run.pk} will stop after its current batch."

    return _act(request, slug, action, anchor="retraining")


@login_required
@require_POST
def retrain_rule(request: AuthenticatedHttpRequest, slug: str) -> HttpResponseRedirect:
    def action(workflow: Workflow) -> str:
        checkboxes = {
            name: request.POST.get(name) == "on" for name in ("enabled", "after_step_down")
        }
        rule = retrain_rule_update(
            workflow=workflow,
            actor=request.user,
            **retrain_rule_input({**request.POST.dict(), **checkboxes}),
        )
        return "Retraining rule saved: " + ("on." if rule.enabled else "off.")

    return _act(request, slug, action, anchor="retraining")
