"""The zip upload page: a workflow's submitters send a zip of images from the browser.

The archive goes through the same bulk ingest service as ``POST …/cases/bulk/``
(``processing.bulk.cases_bulk_create``, via ``processing.bulk_zip``), and the page
lists each file's result. A plain form POST works without script; with it,
``processing/upload.js`` sends the same form with XMLHttpRequest to show the upload's
progress and puts the results into the page it came from.

The body's size is checked from its Content-Length before it is read: the view is
CSRF-exempt on the outside (the CSRF check would read the whole body first) and checks
the token itself once the size is known.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from kernel.errors import DomainError, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from processing.bulk import BulkResult, cases_bulk_create
from processing.bulk_zip import IgnoredEntry, zip_upload_open
from workflows.access import access_workflow, has_right
from workflows.inputs import bulk_upload_limits
from workflows.models import Workflow

# Multipart framing and the CSRF field around the archive.
FORM_OVERHEAD_BYTES = 64 * 1024


def _workflow(request: HttpRequest, slug: str) -> Workflow:
    try:
        return access_workflow(request.user, slug, "can_submit")
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


# kind (the CSS class and the summary's key) and the words shown, by item status.
OUTCOMES = {201: ("accepted", "accepted"), 200: ("existing", "already submitted")}
REFUSED = ("refused", "refused")


def _rows(workflow: Workflow, results: list[BulkResult]) -> list[dict[str, Any]]:
    return [
        {
            "file": result.file,
            "external_id": result.external_id,
            "kind": OUTCOMES.get(result.status, REFUSED)[0],
            "outcome": OUTCOMES.get(result.status, REFUSED)[1],
            "status": result.status,
            "case_id": result.id or "",
            "message": result.error["message"] if result.error else "",
            "url": reverse("workspace:case", args=[workflow.slug, result.id]) if result.id else "",
        }
        for result in results
    ]


def _page(
    request: HttpRequest,
    workflow: Workflow,
    *,
    results: list[BulkResult] | None = None,
    ignored: list[IgnoredEntry] | None = None,
    error: DomainError | None = None,
) -> HttpResponse:
    rows = _rows(workflow, results or [])
    context = {
        "workflow": workflow,
        "error": error,
        "uploaded": results is not None,
        "rows": rows,
        "ignored": ignored or [],
        "counts": {
            kind: sum(row["kind"] == kind for row in rows)
            for kind in ("accepted", "existing", "refused")
        },
        "limits": bulk_upload_limits(),
        "may_review": has_right(request.user, workflow, "can_review"),
    }
    return render(
        request,
        "processing/upload.html",
        context,
        status=error.status_code if error else 200,
    )


@csrf_protect
def _upload(request: HttpRequest, workflow: Workflow) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        return _page(
            request, workflow, error=InvalidInput("file: choose a .zip file", field="file")
        )
    if (upload.size or 0) > settings.LOOPGATE_BULK_MAX_BYTES:
        return _page(request, workflow, error=_too_large(upload.size or 0))
    try:
        archive = zip_upload_open(upload)
    except DomainError as exc:
        return _page(request, workflow, error=exc)
    try:
        results = cases_bulk_create(
            workflow=workflow,
            items=archive.items,
            read=archive.read,
            submitted_by=request.user,  # type: ignore[arg-type]  # login_required
        )
    finally:
        archive.close()
    return _page(request, workflow, results=results, ignored=archive.ignored)


def _too_large(size: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"file: {size} bytes is over the limit of {settings.LOOPGATE_BULK_MAX_BYTES} bytes",
        field="file",
    )


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def case_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a zip of images (submitters); the per-file results."""
    workflow = _workflow(request, slug)
    if request.method == "POST":
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.LOOPGATE_BULK_MAX_BYTES + FORM_OVERHEAD_BYTES:
            # Refused unread (the form's script refuses such a file before sending it).
            return _page(request, workflow, error=_too_large(length))
        return _upload(request, workflow)
    return _page(request, workflow)
