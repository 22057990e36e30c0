"""Who may do what. Every API view and page goes through these functions.

A user who is not a member of a workflow gets 404, never 403: the answer must not
reveal that the workflow or its cases exist. A member without the needed right gets 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.types import RequestUser as User
from kernel.bounds import ID_MAX
from kernel.errors import Forbidden, NotFound
from kernel.readcache import access_key, cached_read
from workflows.models import Case, LabelExample, Workflow, WorkflowMembership

RIGHTS = ("can_submit", "can_review", "can_admin")


def workflow_cache_key(slug: str) -> str:
    return access_key("workflow", slug)


def workflow_id_cache_key(workflow_id: int) -> str:
    return access_key("workflow-id", workflow_id)


def workflow_by_id(workflow_id: int) -> Workflow | None:
    """The workflow ``workflow_id``, or None; cached like ``workflow_by_slug``."""
    return cached_read(
        workflow_id_cache_key(workflow_id),
        lambda: Workflow.objects.filter(pk=workflow_id).first(),
    )


def membership_cache_key(workflow_id: int, user_id: int) -> str:
    return access_key("membership", workflow_id, user_id)


def workflow_by_slug(slug: str) -> Workflow | None:
    """The workflow ``slug`` (archived or not), or None; cached (``kernel.readcache``,
    forgotten by ``workflows.invalidation`` whenever the workflow is saved)."""
    return cached_read(workflow_cache_key(slug), lambda: Workflow.objects.filter(slug=slug).first())


def membership_of(user: User, workflow: Workflow) -> WorkflowMembership | None:
    """``user``'s membership in ``workflow``, or None; cached like ``workflow_by_slug``
    (a membership added, changed or removed is forgotten at once)."""
    if not user.is_authenticated:
        return None
    return cached_read(
        membership_cache_key(workflow.pk, user.pk),
        lambda: WorkflowMembership.objects.filter(user=user, workflow=workflow).first(),
    )


def _grants(membership: WorkflowMembership | None, right: str) -> bool:
    if membership is None:
        return False
    if membership.can_admin and right == "can_review":
        return True
    return bool(getattr(membership, right))


def has_right(user: User, workflow: Workflow, right: str) -> bool:
    if right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}")
    if getattr(user, "is_superuser", False):
        return True
    return _grants(membership_of(user, workflow), right)


def rights_of(membership: WorkflowMembership) -> frozenset[str]:
    """The rights a membership grants, as ``has_right`` reads them (admins also review)."""
    rights = {right for right in RIGHTS if getattr(membership, right)}
    if membership.can_admin:
        rights.add("can_review")
    return frozenset(rights)


@dataclass(frozen=True)
class WorkflowRights:
    """One workflow a user can see and what they may do in it."""

    slug: str
    name: str
    rights: frozenset[str]
    archived: bool = False


def workflow_rights(user: User) -> list[WorkflowRights]:
    """Every workflow ``user`` can see, with their rights there, ordered by name (one query).

    The same answer as ``has_right`` for each workflow, read at once for pages that show
    what a user may reach (the navigation bar).
    """
    if not user.is_authenticated:
        return []
    if getattr(user, "is_superuser", False):
        everything = frozenset(RIGHTS)
        return [
            WorkflowRights(slug=slug, name=name, rights=everything, archived=archived is not None)
            for slug, name, archived in Workflow.objects.order_by("name", "slug").values_list(
                "slug", "name", "archived_at"
            )
        ]
    memberships = (
        WorkflowMembership.objects.filter(user=user)
        .select_related("workflow")
        .order_by("workflow__name", "workflow__slug")
    )
    return [
        WorkflowRights(
            slug=m.workflow.slug,
            name=m.workflow.name,
            rights=rights_of(m),
            archived=m.workflow.archived_at is not None,
        )
        for m in memberships
    ]


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
    """The workflow ``slug`` if ``user`` is a member (404 otherwise) holding ``right`` (403).

    The same answer as ``workflows_visible(user).filter(slug=slug)`` and ``has_right``,
    from the cached workflow and membership: no query once they are cached.
    """
    if right is not None and right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}")
    workflow = workflow_by_slug(slug) if user.is_authenticated else None
    if workflow is None:
        raise NotFound(f"workflow {slug!r} not found")
    if getattr(user, "is_superuser", False):
        return workflow
    membership = membership_of(user, workflow)
    if membership is None:
        raise NotFound(f"workflow {slug!r} not found")
    if right is not None and not _grants(membership, right):
        raise Forbidden(f"you may not do this in workflow {slug!r} ({right.removeprefix('can_')})")
    return workflow


def access_label_example(user: User, slug: str, example_id: str | int) -> LabelExample:
    """An example image of workflow ``slug``'s labels, for any member of the workflow
    (404 for everyone else, and for an id that is not one of this workflow's examples)."""
    workflow = access_workflow(user, slug)
    text = str(example_id)
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= ID_MAX):
        raise NotFound(f"label example {example_id!r} not found")
    example = LabelExample.objects.filter(workflow=workflow, pk=int(text)).first()
    if example is None:
        raise NotFound(f"label example {example_id!r} not found")
    return example


# --- What of a case a caller may see ---------------------------------------------------


@dataclass(frozen=True)
class CaseVisibility:
    """Which parts of a case a caller may see. Every field defaults to hidden.

    The one rule for every rendering of a case (the case API, its events, saliency
    overlays, the review screen): serializers and views show a part only when its flag
    is set, so a renderer given no visibility shows nothing the model said.
    """

    predictions: bool = False
    """The model's predictions (and the suggestion on the review screen)."""
    model_decision: bool = False
    """A decision the model made: its label, confidence, version, threshold."""
    human_decision: bool = False
    """A decision reviewers made."""
    routing: bool = False
    """The level, threshold and review reason (which says whether it is an audit)."""
    event_details: bool = False
    """Events' data and the reasons of model and non-status events."""
    saliency: bool = False
    """Saliency overlays of the model's predictions."""
    choose_model_version: bool = False
    """May ask about a prediction other than the one the case was shown with."""


HIDDEN = CaseVisibility()
FULL = CaseVisibility(
    predictions=True,
    model_decision=True,
    human_decision=True,
    routing=True,
    event_details=True,
    saliency=True,
    choose_model_version=True,
)


def blind_to_model(*, is_gold: bool, review_reason: str | None, suggestion_visible: bool) -> bool:
    """Whether a reviewer of such a case must not learn what the model said.

    Shadow mode (no visible suggestion), a blind audit of a model-decided case, and a gold
    case all hide the model: a reviewer's label must be their own.
    """
    return is_gold or review_reason == "audit" or not suggestion_visible


def reviewer_visibility(*, blind: bool, is_gold: bool) -> CaseVisibility:
    """What a reviewer (neither submitter nor admin) sees of a case."""
    if blind:
        # They see that the case moved and what people decided, except the answer to a
        # gold case, which would tell them it was gold.
        return CaseVisibility(human_decision=not is_gold)
    return CaseVisibility(
        predictions=True,
        model_decision=True,
        human_decision=True,
        routing=True,
        event_details=True,
        saliency=True,
    )


def review_task_visibility(*, show_suggestion: bool, blind_kind: bool) -> CaseVisibility:
    """What the review screen shows of a task's case: the suggestion only where allowed.

    The screen is the same for admins and reviewers: whoever labels a task labels it
    blind unless the task shows the suggestion; gold and audit tasks (``blind_kind``)
    never do.
    """
    if show_suggestion and not blind_kind:
        return CaseVisibility(predictions=True)
    return HIDDEN


def _case_reader(user: User, workflow: Workflow) -> str | None:
    """ "owner" for submitters, admins and superusers, "reviewer" for other reviewers."""
    if getattr(user, "is_superuser", False):
        return "owner"
    membership = membership_of(user, workflow)
    if membership is None:
        return None
    if membership.can_submit or membership.can_admin:
        return "owner"
    if membership.can_review:
        return "reviewer"
    return None


def _visibility_for(reader: str | None, case: Case) -> CaseVisibility:
    if reader == "owner":
        return FULL
    if reader == "reviewer":
        blind = blind_to_model(
            is_gold=case.is_gold,
            review_reason=case.review_reason,
            suggestion_visible=case.suggestion_visible,
        )
        return reviewer_visibility(blind=blind, is_gold=case.is_gold)
    return HIDDEN


def case_visibility(user: User, case: Case) -> CaseVisibility:
    """What ``user`` may see of ``case`` (HIDDEN for a user who may not read it).

    Submitters and admins see everything. A reviewer who is neither sees the model's
    output only where the case's review allowed the suggestion — never in shadow mode,
    never on a blind audit, never on a gold case — so no endpoint can be used to peek
    past a blind review. A reviewer's own verdict does not change this.
    """
    return _visibility_for(_case_reader(user, case.workflow), case)


def access_case(user: User, case_id: str | uuid.UUID) -> tuple[Case, CaseVisibility]:
    """The case if the user may read it (404 otherwise), and what of it they may see."""
    try:
        case_uuid = uuid.UUID(str(case_id))
    except ValueError as exc:
        raise NotFound(f"case {case_id!r} not found") from exc
    case = Case.objects.select_related("workflow").filter(id=case_uuid).first()
    reader = _case_reader(user, case.workflow) if case is not None else None
    if case is None or reader is None:
        raise NotFound(f"case {case_id!r} not found")
    return case, _visibility_for(reader, case)


# --- The case list --------------------------------------------------------------------


@dataclass(frozen=True)
class CaseListReader:
    """A reader of a workflow's case list, and what they may see of each case.

    Workflow admins, submitters and superusers see everything (as ``case_visibility``
    says); other reviewers see each case as
    ``case_visibility`` shows it to them, and may not filter or order by what the model
    did (which would reveal a blind case's model output by elimination).
    """

    workflow: Workflow
    sees_everything: bool

    def visibility(self, case: Case) -> CaseVisibility:
        return _visibility_for("owner" if self.sees_everything else "reviewer", case)


def access_case_list(user: User, slug: str) -> CaseListReader:
    """The case list of ``slug`` for members with the review or admin right (404 for
    non-members, 403 for members without either right)."""
    workflow = access_workflow(user, slug, "can_review")
    return CaseListReader(
        workflow=workflow,
        sees_everything=_case_reader(user, workflow) == "owner",
    )


def case_list_filters_check(reader: CaseListReader, revealing: list[str]) -> None:
    """Refuse (403, naming the parameter) filters on the model's output, or on duplicates
    (which lead to an earlier verdict of the same image), to a reader who may not see it."""
    if revealing and not reader.sees_everything:
        name = revealing[0]
        what = "duplicates" if name.startswith("duplicate") else "what the model did"
        raise Forbidden(
            f"{name}: only workflow admins may filter or order cases by {what}",
            field=name,
        )


def access_export(user: User, slug: str) -> Workflow:
    """The workflow whose labels ``user`` may export: its admins only (D31)."""
    return access_workflow(user, slug, "can_admin")


# --- Reviewing -------------------------------------------------------------------------


def access_review(user: User, workflow: Workflow) -> bool:
    """Check ``user`` may review ``workflow``; return whether they may also adjudicate.

    A non-member gets NotFound (the workflow's existence is not revealed), a member
    without the review right Forbidden; admins and superusers review and adjudicate.
    """
    if getattr(user, "is_superuser", False):
        return True
    membership = membership_of(user, workflow)
    if membership is None:
        raise NotFound(f"workflow {workflow.slug!r} not found")
    if not (membership.can_review or membership.can_admin):
        raise Forbidden(f"you may not review in workflow {workflow.slug!r}")
    return membership.can_admin
