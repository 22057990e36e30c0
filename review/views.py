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
from review import selectors
from workflows.access import access_workflow
from workflows.models import Workflow


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
def review_screen(request: HttpRequest, slug: str) -> HttpResponse:
    """The review screen. It carries no case: the script claims cases through the API,
    so what the page shows of a case is exactly what the API allows."""
    workflow = _reviewable_workflow(request, slug)
    labels = selectors.label_keys(list(workflow.labels))
    config = {
        "workflow": workflow.slug,
        "labels": [key.__dict__ for key in labels],
        "undoWindowSeconds": settings.LOOPGATE_UNDO_WINDOW_SECONDS,
        "urls": {
            "next": reverse("review-next", args=[workflow.slug]),
            "recent": reverse("review-verdicts-recent", args=[workflow.slug]),
            "verdict": reverse("review-verdict", args=[0]),
            "skip": reverse("review-skip", args=[0]),
            "release": reverse("review-release", args=[0]),
            "undo": reverse("review-undo", args=[0]),
        },
    }
    return render(
        request,
        "review/review.html",
        {"workflow": workflow, "labels": labels, "config": config},
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
            "api_url": reverse("review-stats", args=[workflow.slug]),
        },
        status=status,
    )
