"""Who may do what. Every API view and page goes through these functions.

A user who is not a member of a workflow gets 404, never 403: the answer must not
reveal that the workflow or its cases exist. A member without the needed right gets 403.
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from accounts.types import RequestUser as User
from kernel.errors import Forbidden, NotFound
from workflows.models import Case, Workflow, WorkflowMembership

RIGHTS = ("can_submit", "can_review", "can_admin")


def membership_of(user: User, workflow: Workflow) -> WorkflowMembership | None:
    if not user.is_authenticated:
        return None
    return WorkflowMembership.objects.filter(user=user, workflow=workflow).first()


def has_right(user: User, workflow: Workflow, right: str) -> bool:
    if right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}")
    if getattr(user, "is_superuser", False):
        return True
    membership = membership_of(user, workflow)
    if membership is None:
        return False
    if membership.can_admin and right == "can_review":
        return True
    return bool(getattr(membership, right))


def workflows_visible(user: User) -> QuerySet[Workflow]:
    if getattr(user, "is_superuser", False):
        return Workflow.objects.all()
    if not user.is_authenticated:
        return Workflow.objects.none()
    return Workflow.objects.filter(memberships__user=user).distinct()


def workflows_reviewable(user: User) -> QuerySet[Workflow]:
    if getattr(user, "is_superuser", False):
        return Workflow.objects.all()
    if not user.is_authenticated:
        return Workflow.objects.none()
    return (
        Workflow.objects.filter(memberships__user=user, memberships__can_review=True).distinct()
        | Workflow.objects.filter(memberships__user=user, memberships__can_admin=True).distinct()
    )


def access_workflow(user: User, slug: str, right: str | None = None) -> Workflow:
    """The workflow ``slug`` if ``user`` is a member (404 otherwise) holding ``right`` (403)."""
    workflow = workflows_visible(user).filter(slug=slug).first()
    if workflow is None:
        raise NotFound(f"workflow {slug!r} not found")
    if right is not None and not has_right(user, workflow, right):
        raise Forbidden(f"you may not do this in workflow {slug!r} ({right.removeprefix('can_')})")
    return workflow


def access_case(user: User, case_id: str | uuid.UUID) -> tuple[Case, bool]:
    """The case if the user may read it, and whether the user may see the model's output.

    Submitters and admins read cases with the model's predictions and decisions. A
    reviewer who is neither sees them only where the case's review allowed the
    suggestion — never in shadow mode, never on a blind audit of a model-decided case,
    never on a gold case — so the case API cannot be used to peek past a blind review.
    """
    try:
        case_uuid = uuid.UUID(str(case_id))
    except ValueError as exc:
        raise NotFound(f"case {case_id!r} not found") from exc
    case = Case.objects.select_related("workflow").filter(id=case_uuid).first()
    if case is None or not workflows_visible(user).filter(pk=case.workflow_id).exists():
        raise NotFound(f"case {case_id!r} not found")
    workflow = case.workflow
    if has_right(user, workflow, "can_submit") or has_right(user, workflow, "can_admin"):
        return case, True
    if has_right(user, workflow, "can_review"):
        blind = case.is_gold or case.review_reason == "audit" or not case.suggestion_visible
        return case, not blind
    raise NotFound(f"case {case_id!r} not found")
