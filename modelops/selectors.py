"""Reads about model versions and deployments."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from modelops.models import Deployment, DeploymentRole, ModelVersion


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
    active = deployments_active(workflow_id=workflow_id)
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
