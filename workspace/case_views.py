"""Pages: a workflow's case list (filters, cursor pages, export) and one case's story
(image, predictions, saliency, decision, verdicts, timeline).

They read with the same access rules, filters and selectors as the API
(``workflows.access``, ``workflows.inputs``, ``workflows.selectors``): a page shows no
more of a case than the case API would.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse

from accounts.types import AuthenticatedHttpRequest
from decisions.routing import Level, ReviewReason
from kernel.errors import DomainError, Forbidden, NotFound
from modelops.models import ModelVersion
from review.models import ReviewTask, ReviewTaskEvent, TaskStatus, Verdict
from workflows.access import (
    CaseListReader,
    access_case,
    access_case_list,
    case_list_filters_check,
    has_right,
)
from workflows.inputs import (
    DEFAULT_LIMIT,
    FILTER_HELP,
    LIST_PARAMETERS,
    CaseFilters,
    bulk_upload_limits,
    case_filters_parse,
    case_list_limit,
)
from workflows.models import Case, CaseStatus, DecisionSource
from workflows.selectors import cases_page
from workflows.serializers import CaseEventOutput, CaseOutput, shown_label

ORDERING_CHOICES = (
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-decided_at", "Decided, newest first"),
    ("decided_at", "Decided, oldest first"),
)


def _http(exc: DomainError) -> Exception:
    if isinstance(exc, NotFound):
        return Http404(exc.message)
    return PermissionDenied(exc.message)


def _reader(request: HttpRequest, slug: str) -> CaseListReader:
    try:
        return access_case_list(request.user, slug)
    except (NotFound, Forbidden) as exc:
        raise _http(exc) from exc


def _query(params: QueryDict, **changes: str | None) -> str:
    """``params`` without blanks, with ``changes`` applied, as a query string."""
    query = QueryDict(mutable=True)
    for name in params:
        value = params.get(name, "").strip()
        if value and name in LIST_PARAMETERS:
            query[name] = value
    for name, change in changes.items():
        if change is None:
            query.pop(name, None)
        else:
            query[name] = change
    return query.urlencode()


@login_required
def case_list(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """The workflow's cases, filtered as the API filters them, a page at a time."""
    reader = _reader(request, slug)
    workflow = reader.workflow
    error: DomainError | None = None
    filters = CaseFilters()
    page = None
    try:
        filters = case_filters_parse(request.GET, workflow=workflow)
        case_list_filters_check(reader, filters.model_revealing())
        page = cases_page(
            workflow=workflow,
            filters=filters,
            cursor=request.GET.get("cursor") or None,
            limit=case_list_limit(request.GET),
        )
    except DomainError as exc:
        error = exc
    rows = []
    for case in page.cases if page else []:
        visibility = reader.visibility(case)
        label = shown_label(case, visibility)
        source = case.decision_source
        shown_source = source and (
            visibility.model_decision if source == "model" else visibility.human_decision
        )
        rows.append(
            {
                "case": case,
                "label": label,
                "decided_by": source if shown_source else "",
                "decision_version": case.decision_model_version
                if visibility.model_decision
                else None,
                "review_reason": case.review_reason if visibility.routing else "",
                "decided_at": case.decided_at if label else None,
                "url": reverse("workspace:case", args=[workflow.slug, case.id]),
            }
        )
    may_export = has_right(request.user, workflow, "can_admin")
    export_query = _query(request.GET, cursor=None, limit=None)
    context: dict[str, Any] = {
        "workflow": workflow,
        "rows": rows,
        "error": error,
        "params": {name: request.GET.get(name, "") for name in LIST_PARAMETERS},
        "sees_everything": reader.sees_everything,
        "statuses": CaseStatus.values,
        "sources": DecisionSource.values,
        "levels": [level.value for level in Level],
        "reasons": [reason.value for reason in ReviewReason],
        "versions": ModelVersion.objects.filter(deployments__workflow=workflow)
        .distinct()
        .order_by("name", "version")
        if reader.sees_everything
        else [],
        "orderings": ORDERING_CHOICES,
        "help": FILTER_HELP,
        "limit": DEFAULT_LIMIT,
        "next_query": _query(request.GET, cursor=page.next_cursor)
        if page and page.next_cursor
        else None,
        "previous_query": _query(request.GET, cursor=page.previous_cursor)
        if page and page.previous_cursor
        else None,
        "filtered": bool(filters.given()),
        "may_export": may_export,
        "may_submit": has_right(request.user, workflow, "can_submit"),
        "limits": bulk_upload_limits(),
        "export_url": reverse("workflow-export", args=[workflow.slug]),
        "export_query": export_query,
        "review_url": reverse("review:screen", args=[workflow.slug]),
    }
    return render(
        request, "workspace/cases.html", context, status=error.status_code if error else 200
    )


def _prediction_rows(case: Case) -> list[dict[str, Any]]:
    rows = []
    for prediction in case.predictions.select_related("model_version").order_by("created_at"):
        scores = sorted(
            ((str(label), float(score)) for label, score in (prediction.scores or {}).items()),
            key=lambda item: -item[1],
        )
        rows.append(
            {
                "prediction": prediction,
                "deciding": prediction.pk == case.deciding_prediction_id,
                "scores": [
                    {"label": label, "score": score, "percent": round(score * 100)}
                    for label, score in scores
                ],
            }
        )
    return rows


def _timeline(case: Case, *, details: bool, context: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's events and, for readers who see details, its review tasks' events,
    oldest first."""
    entries = [
        {**CaseEventOutput(event, context=context).data, "source": "case", "at": event.created_at}
        for event in case.events.select_related("actor")
    ]
    if details:
        for event in ReviewTaskEvent.objects.filter(task__case=case).select_related(
            "actor", "task"
        ):
            entries.append(
                {
                    "source": "task",
                    "at": event.created_at,
                    "kind": f"{event.task.kind} task",
                    "from_status": event.from_status,
                    "to_status": event.to_status,
                    "actor_type": event.actor_type,
                    "actor": event.actor.get_username() if event.actor else None,
                    "reason": event.reason,
                    "data": event.data,
                }
            )
    entries.sort(key=lambda entry: entry["at"])
    return entries


# The later copies of a case its page links (the case list's ?duplicate_of= lists all).
COPIES_SHOWN = 10


def _duplicates(case: Case, *, may_filter: bool) -> dict[str, Any]:
    """The case's group of copies (D88): the first case it duplicates, or its later copies
    (at most COPIES_SHOWN, with their number). For readers who may see the routing."""

    def entry(other: Case) -> dict[str, Any]:
        return {
            "name": other.external_id or str(other.id),
            "url": reverse("workspace:case", args=[case.workflow.slug, other.id]),
        }

    if case.duplicate_of_id is not None:
        first = (
            Case.objects.filter(pk=case.duplicate_of_id, workflow=case.workflow)
            .only("id", "external_id")
            .first()
        )
        return {"first": entry(first) if first else None, "copies": [], "count": 0}
    copies = list(
        Case.objects.filter(duplicate_of=case)
        .only("id", "external_id", "created_at")
        .order_by("created_at", "id")[: COPIES_SHOWN + 1]
    )
    count = len(copies)
    if count > COPIES_SHOWN:
        count = Case.objects.filter(duplicate_of=case).count()
    list_url = (
        reverse("workspace:cases", args=[case.workflow.slug])
        + "?"
        + urlencode({"duplicate_of": str(case.id)})
    )
    return {
        "first": None,
        "copies": [entry(copy) for copy in copies[:COPIES_SHOWN]],
        "count": count,
        "list_url": list_url if may_filter and count else None,
    }


@login_required
def case_page(request: AuthenticatedHttpRequest, slug: str, case_id: str) -> HttpResponse:
    """One case: the image, every version's prediction, the decision, the verdicts and
    the full event trail, as far as the reader may see them."""
    try:
        case, visibility = access_case(request.user, case_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if case.workflow.slug != slug:
        raise Http404(f"case {case_id!r} not found")
    workflow = case.workflow
    sees_everything = visibility.choose_model_version
    context_rule = {"visibility": visibility}
    data = CaseOutput(case, context=context_rule).data
    # A reviewer does not see others' verdicts on a case still in review: their own
    # label must be their own.
    open_task = ReviewTask.objects.filter(case=case, status=TaskStatus.OPEN).exists()
    show_verdicts = visibility.human_decision and (sees_everything or not open_task)
    verdicts = (
        list(
            Verdict.objects.filter(case=case)
            .select_related("reviewer", "task")
            .order_by("created_at", "id")
        )
        if show_verdicts
        else []
    )
    label = shown_label(case, visibility)
    context: dict[str, Any] = {
        "workflow": workflow,
        "case": case,
        "data": data,
        "label": label,
        "visibility": visibility,
        "predictions": _prediction_rows(case) if visibility.predictions else [],
        "verdicts": verdicts,
        "show_verdicts": show_verdicts,
        "timeline": _timeline(case, details=visibility.event_details, context=context_rule),
        "image_url": reverse("case-image", args=[case.id]),
        "cases_url": reverse("workspace:cases", args=[workflow.slug]),
        "saliency": visibility.saliency and case.predictions.exists(),
        "may_list": has_right(request.user, workflow, "can_review"),
        # Whether it is a copy leads to an earlier verdict of the same image: shown with
        # the routing only (as the case API's duplicate_of).
        "duplicates": _duplicates(case, may_filter=sees_everything) if visibility.routing else None,
    }
    return render(request, "workspace/case.html", context)
