"""Who may do what with models. Everything in the model lifecycle is for workflow admins.

As in ``workflows.access``: a user who is not a member of the workflow gets 404 (the
answer must not reveal that it exists), a member without the admin right gets 403.
"""

from __future__ import annotations

from django.db.models import Q

from kernel.bounds import ID_MAX
from kernel.errors import Forbidden, NotFound
from modelops.models import ModelVersion, TrainingRun
from workflows.access import User, access_workflow, has_right, workflows_visible
from workflows.models import Workflow

ADMIN = "can_admin"


def _ids_of(raw: int | str) -> tuple[int, ...]:
    """The row id from a URL, or none for text that cannot be one (then: 404)."""
    text = str(raw)
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return ()
    value = int(text)
    return (value,) if 0 < value <= ID_MAX else ()


def access_models(user: User, slug: str) -> Workflow:
    """The workflow ``slug`` if ``user`` administers it (404 for strangers, 403 for members)."""
    return access_workflow(user, slug, ADMIN)


def _admin_of(user: User, workflow: Workflow, what: str) -> None:
    if not workflows_visible(user).filter(pk=workflow.pk).exists():
        raise NotFound(f"{what} not found")
    if not has_right(user, workflow, ADMIN):
        raise Forbidden(f"only admins of workflow {workflow.slug!r} may do this")


def access_training_run(user: User, run_id: int | str) -> TrainingRun:
    run = (
        TrainingRun.objects.select_related(
            "workflow", "base_version", "result_version", "created_by"
        )
        .filter(pk__in=_ids_of(run_id))
        .first()
    )
    if run is None:
        raise NotFound(f"training run {run_id!r} not found")
    _admin_of(user, run.workflow, f"training run {run_id!r}")
    return run


def access_model_version(user: User, version_id: int | str) -> ModelVersion:
    """A version, for admins of the workflow it was registered for or is deployed in."""
    version = (
        ModelVersion.objects.select_related("workflow", "created_by")
        .filter(pk__in=_ids_of(version_id))
        .first()
    )
    if version is None:
        raise NotFound(f"model version {version_id!r} not found")
    # One filter with Q, not ``qs.distinct() | qs``: PostgreSQL refuses to combine a
    # DISTINCT query with a plain one ("Cannot combine a unique query with a non-unique
    # query"), which made this a 500 for every caller there.
    related = Q(deployments__model_version=version)
    if version.workflow_id is not None:
        related |= Q(pk=version.workflow_id)
    workflows = Workflow.objects.filter(related)
    visible = workflows_visible(user).filter(pk__in=workflows.values("pk"))
    if not visible.exists():
        raise NotFound(f"model version {version_id!r} not found")
    if not any(has_right(user, workflow, ADMIN) for workflow in visible):
        raise Forbidden("only workflow admins may read model versions")
    return version
