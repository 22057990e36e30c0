"""Pages of the reviewer UI. The review screen is rendered once; its script does the rest
through the review API, with the session cookie and the CSRF token."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from accounts.types import AuthenticatedHttpRequest
from kernel.errors import Forbidden, NotFound
from kernel.markdown import markdown_html
from review import selectors
from workflows.access import access_workflow
from workflows.labels import SCREEN_KEYS
from workflows.models import Workflow
from workflows.selectors import label_examples

IDLE_SECONDS_MAX = 120


def _administered_workflow(request: HttpRequest, slug: str) -> Workflow:
    try:
        return access_workflow(request.user, slug, "can_admin")
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


def _reviewable_workflow(request: HttpRequest, slug: str) -> Workflow:
    try:
        return access_workflow(request.user, slug, "can_review")
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The workflows the user may review, with queue depth and the oldest waiting case."""
    return render(
        request, "review/home.html", {"queues": selectors.review_queues(user=request.user)}
    )


@login_required
def review_screen(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """The review screen. It carries no case: the script claims cases through the API,
    so what the page shows of a case is exactly what the API allows."""
    workflow = _reviewable_workflow(request, slug)
    labels = selectors.screen_labels(workflow)
    counts = selectors.queue_counts(workflows=[workflow], user=request.user)[workflow.pk]
    config = {
        "workflow": workflow.slug,
        "labels": labels,
        "screenKeys": sorted(SCREEN_KEYS),
        "undoWindowSeconds": settings.LOOPGATE_UNDO_WINDOW_SECONDS,
        "leaseSeconds": workflow.review_lease_seconds,
        # Idle: no key, click or pointer move for this long; the heartbeat stops (D46).
        "idleSeconds": min(workflow.review_lease_seconds, IDLE_SECONDS_MAX),
        "urls": {
            "next": reverse("review-next", args=[workflow.slug]),
            "recent": reverse("review-verdicts-recent", args=[workflow.slug]),
            "queue": reverse("review-queue", args=[workflow.slug]),
            "verdict": reverse("review-verdict", args=[0]),
            "skip": reverse("review-skip", args=[0]),
            "release": reverse("review-release", args=[0]),
            "heartbeat": reverse("review-heartbeat", args=[0]),
            "undo": reverse("review-undo", args=[0]),
        },
    }
    return render(
        request,
        "review/review.html",
        {
            "workflow": workflow,
            "labels": labels,
            "config": config,
            "counts": counts,
            "instructions": markdown_html(workflow.instructions),
            # Label by label, only the labels that have examples; the thumbnails load
            # when the panel is opened (loading="lazy" inside the closed <details>).
            "examples": [
                (label, found)
                for label, found in label_examples(workflow=workflow).items()
                if found
            ],
        },
    )


HISTORY_PAGE_SIZE = 50


@login_required
def history(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """My verdicts in the workflow, newest first, a page at a time; filter by label and
    by whether undone ones are shown."""
    workflow = _reviewable_workflow(request, slug)
    label = request.GET.get("label", "")
    if label not in workflow.labels:
        label = ""
    show_undone = request.GET.get("undone") == "1"
    try:
        page = max(1, min(int(request.GET.get("page", "1")), 100_000))
    except ValueError:
        page = 1
    found = selectors.verdicts_history(
        workflow=workflow,
        reviewer=request.user,
        label=label or None,
        include_retracted=show_undone,
        offset=(page - 1) * HISTORY_PAGE_SIZE,
        limit=HISTORY_PAGE_SIZE,
    )
    pages = max(1, -(-found["count"] // HISTORY_PAGE_SIZE))
    return render(
        request,
        "review/history.html",
        {
            "workflow": workflow,
            "verdicts": found["results"],
            "count": found["count"],
            "page": page,
            "pages": pages,
            "label": label,
            "show_undone": show_undone,
        },
    )


@login_required
def reviewer_stats(request: HttpRequest, slug: str) -> HttpResponse:
    """Each reviewer's throughput, agreement, gold accuracy and skip rate, per day or week.

    For workflow admins. The queue and workflow-wide agreement come from the same
    selectors as the review statistics API.
    """
    workflow = _administered_workflow(request, slug)
    period = request.GET.get("period") or "day"
    status = 200
    problem = None
    if period not in selectors.PERIODS:
        problem = f"Unknown period {period!r}: choose day or week."
        period, status = "day", 400
    report = selectors.reviewer_activity(workflow=workflow, period=period)
    return render(
        request,
        "review/stats.html",
        {
            "workflow": workflow,
            "report": report,
            "periods": list(selectors.PERIODS.items()),
            "problem": problem,
            "queue": selectors.queue_stats(workflow=workflow),
            "agreement": selectors.agreement_stats(workflow=workflow),
            "change_requests": selectors.change_requests(workflow=workflow, open_only=True),
            "api_url": reverse("review-stats", args=[workflow.slug]),
        },
        status=status,
    )
