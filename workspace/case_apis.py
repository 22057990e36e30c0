"""REST endpoint for exporting a workflow's labelled cases (streamed)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from kernel.apischema import ERROR_RESPONSE
from kernel.errors import InvalidInput
from workflows.access import access_export
from workflows.inputs import FILTER_HELP, FILTER_PARAMETERS, ORDERINGS, case_filters_parse
from workflows.models import Workflow
from workspace.export import (
    CONTENT_TYPES,
    FORMATS,
    export_csv,
    export_jsonl,
    export_size,
    export_zip,
)

EXPORT_PARAMETERS = (*FILTER_PARAMETERS, "format")


class _IgnoreFormatNegotiation(BaseContentNegotiation):
    """``format`` names the export's file format here, not a DRF renderer: errors are
    JSON, whatever it says."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = renderers[0]
        return renderer, renderer.media_type


def _export_format(request: Request) -> str:
    fmt = (request.query_params.get("format") or "jsonl").strip()
    if fmt not in FORMATS:
        raise InvalidInput(
            f"format: {fmt[:32]!r} is not one of {', '.join(FORMATS)}", field="format"
        )
    return fmt


def _image_url(request: Request) -> Any:
    placeholder = "00000000-0000-0000-0000-000000000000"
    template = request.build_absolute_uri(reverse("case-image", args=[placeholder]))
    head, _, tail = template.partition(placeholder)
    return lambda case_id: f"{head}{case_id}{tail}"


class WorkflowExportApi(APIView):
    """The workflow's labelled cases, streamed. Workflow admins only (D31)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _IgnoreFormatNegotiation

    def _read(self, request: Request, slug: str) -> tuple[Workflow, Any, str]:
        workflow = access_export(request.user, slug)
        fmt = _export_format(request)
        filters = case_filters_parse(
            request.query_params, workflow=workflow, allowed=EXPORT_PARAMETERS
        )
        return workflow, filters, fmt

    @extend_schema(
        operation_id="workflow_export",
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(FORMATS),
                description="jsonl (default): one JSON object per case; csv: one row per "
                "case, verdicts and metadata as JSON text; zip: the images in a folder "
                "per label (label/<case id>.<ext>).",
            ),
            *[OpenApiParameter(name, str, description=text) for name, text in FILTER_HELP.items()],
            OpenApiParameter("ordering", str, enum=list(ORDERINGS), description="Row order."),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The labelled cases (streamed; the HEAD request answers the "
                "row count in X-Export-Rows).",
            ),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="The labelled cases as CSV."
            ),
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The images by label."
            ),
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        """Export the labelled cases that pass the filters (those of the case list):
        case id, external_id, label, decision source, model version, verdicts,
        metadata, image URL. Streamed: constant memory for any number of rows."""
        workflow, filters, fmt = self._read(request, slug)
        if fmt == "jsonl":
            chunks = export_jsonl(workflow=workflow, filters=filters, image_url=_image_url(request))
        elif fmt == "csv":
            chunks = export_csv(workflow=workflow, filters=filters, image_url=_image_url(request))
        else:
            chunks = export_zip(workflow=workflow, filters=filters)
        response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="{workflow.slug}-{stamp}.{fmt}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        # Proxies (nginx) must pass the rows on as they come, not buffer the export.
        response["X-Accel-Buffering"] = "no"
        return response

    def head(self, request: Request, slug: str) -> HttpResponse:
        """What the export will hold, for a progress bar: X-Export-Rows, and for a zip
        X-Export-Bytes (an estimate of its size)."""
        workflow, filters, fmt = self._read(request, slug)
        size = export_size(workflow=workflow, filters=filters)
        response = HttpResponse(content_type=CONTENT_TYPES[fmt])
        response["X-Export-Rows"] = str(size.rows)
        estimate = size.estimate(fmt)
        if estimate is not None:
            response["X-Export-Bytes"] = str(estimate)
        response["Cache-Control"] = "no-store"
        return response
