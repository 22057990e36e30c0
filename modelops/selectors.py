"""Reads about model versions and deployments."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from kernel.bounds import ID_MAX, bounded_int
from kernel.errors import InvalidInput, NotFound
from modelops.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRole,
    ModelVersion,
    RetrainRule,
    TrainingRun,
)
from workflows.models import Workflow


@dataclass(frozen=True)
class DeploymentPlan:
    """Which versions run on one case, and which of them decides.

    ``deciding`` is None when the workflow has no serving version.
    """

    deciding: ModelVersion | None
    deciding_role: str
    shadows: tuple[ModelVersion, ...]

    def all_versions(self) -> list[tuple[ModelVersion, str]]:
        runs = [(self.deciding, self.deciding_role)] if self.deciding else []
        runs += [(version, DeploymentRole.SHADOW.value) for version in self.shadows]
        return runs


def unit_draw(key: str) -> float:
    """A number in [0, 1) fixed by ``key``: the same case always draws the same value."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def deployments_active(*, workflow_id: int) -> dict[str, Deployment]:
    return {
        deployment.role: deployment
        for deployment in Deployment.objects.filter(
            workflow_id=workflow_id, active=True
        ).select_related("model_version")
    }


def deployment_plan(*, workflow_id: int, case_id: str) -> DeploymentPlan:
    """The plan for one case. A canary decides the cases whose canary draw falls in its share;
    the choice depends only on the case id, so a retried case gets the same version."""
    return deployment_plans(workflow_id=workflow_id, case_ids=[case_id])[case_id]


def deployment_plans(*, workflow_id: int, case_ids: list[str]) -> dict[str, DeploymentPlan]:
    """The plans for a batch of cases, from one read of the active deployments, so every
    case of the batch sees the same side of a promotion or rollback."""
    active = deployments_active(workflow_id=workflow_id)
    return {case_id: _plan_of(active, case_id) for case_id in case_ids}


def _plan_of(active: dict[str, Deployment], case_id: str) -> DeploymentPlan:
    serving = active.get(DeploymentRole.SERVING)
    canary = active.get(DeploymentRole.CANARY)
    shadow = active.get(DeploymentRole.SHADOW)
    deciding, role = (
        (serving.model_version, DeploymentRole.SERVING.value) if serving else (None, "")
    )
    if canary and unit_draw(f"canary:{case_id}") < canary.traffic_share:
        deciding, role = canary.model_version, DeploymentRole.CANARY.value
    shadows = tuple(
        d.model_version
        for d in (shadow,)
        if d is not None and (deciding is None or d.model_version_id != deciding.pk)
    )
    return DeploymentPlan(deciding=deciding, deciding_role=role, shadows=shadows)


def serving_version(*, workflow_id: int) -> ModelVersion | None:
    deployment = deployments_active(workflow_id=workflow_id).get(DeploymentRole.SERVING)
    return deployment.model_version if deployment else None


def versions_of_workflow(*, workflow_id: int) -> QuerySet[ModelVersion]:
    """Versions registered for this workflow or ever deployed in it, newest first."""
    deployed = Deployment.objects.filter(workflow_id=workflow_id).values("model_version_id")
    return (
        ModelVersion.objects.filter(Q(workflow_id=workflow_id) | Q(pk__in=deployed))
        .select_related("created_by")
        .distinct()
        .order_by("-created_at", "-id")
    )


def deployment_events(*, workflow_id: int, limit: int = 100) -> list[DeploymentEvent]:
    return list(
        DeploymentEvent.objects.filter(workflow_id=workflow_id).select_related(
            "actor", "from_version", "to_version"
        )[:limit]
    )


def rollback_target(*, workflow_id: int) -> ModelVersion | None:
    """The version a rollback would return to: the one the serving version replaced."""
    serving = (
        Deployment.objects.filter(workflow_id=workflow_id, active=True, role=DeploymentRole.SERVING)
        .select_related("replaces__model_version")
        .first()
    )
    if serving is None or serving.replaces is None:
        return None
    return serving.replaces.model_version


def training_runs_of(*, workflow_id: int, limit: int = 20) -> list[TrainingRun]:
    return list(
        TrainingRun.objects.filter(workflow_id=workflow_id).select_related(
            "base_version", "result_version", "created_by"
        )[:limit]
    )


def retrain_rule_of(*, workflow_id: int) -> RetrainRule:
    """The workflow's retraining rule; an unsaved, disabled one when none was set."""
    rule = RetrainRule.objects.filter(workflow_id=workflow_id).first()
    return rule or RetrainRule(workflow_id=workflow_id)


# --- Versions named in a request (shared by the API and the pages) ----------------------


def version_of_workflow(workflow: Workflow, version_id: Any, field: str) -> ModelVersion:
    """A version registered for or deployed in ``workflow``; 404 for any other."""
    pk = bounded_int(version_id, name=field, minimum=1, maximum=ID_MAX)
    version = versions_of_workflow(workflow_id=workflow.pk).filter(pk=pk).first()
    if version is None:
        raise NotFound(f"{field}: model version {pk} is not registered for this workflow")
    return version


def comparison_pair(
    workflow: Workflow, baseline_id: Any, challenger_id: Any
) -> tuple[ModelVersion, ModelVersion]:
    """The two versions to compare; by default serving against the shadow (or canary)."""
    active = deployments_active(workflow_id=workflow.pk)
    if baseline_id:
        baseline = version_of_workflow(workflow, baseline_id, "baseline")
    elif DeploymentRole.SERVING in active:
        baseline = active[DeploymentRole.SERVING].model_version
    else:
        raise InvalidInput("baseline: no serving version; name one", field="baseline")
    if challenger_id:
        challenger = version_of_workflow(workflow, challenger_id, "challenger")
    else:
        deployed = active.get(DeploymentRole.SHADOW) or active.get(DeploymentRole.CANARY)
        if deployed is None:
            raise InvalidInput(
                "challenger: no shadow challenger or canary is deployed; name one",
                field="challenger",
            )
        challenger = deployed.model_version
    if baseline.pk == challenger.pk:
        raise InvalidInput("challenger: compare two different versions", field="challenger")
    return baseline, challenger
