"""REST endpoints for submitting a case and retrying a failed one: validate, call the
service, render."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import AuthenticatedRequest
from kernel.apischema import ERROR_RESPONSE
from kernel.errors import Forbidden, InvalidInput, PayloadTooLarge
from kernel.parsers import StrictMultiPartParser
from processing.services import case_create, case_retry
from workflows.access import (
    CaseListReader,
    CaseVisibility,
    access_case,
    access_case_list,
    access_workflow,
    case_list_filters_check,
    case_visibility,
    has_right,
)
from workflows.inputs import (
    DEFAULT_LIMIT,
    FILTER_HELP,
    MAX_LIMIT,
    ORDERINGS,
    case_filters_parse,
    case_list_limit,
)
from workflows.models import Case
from workflows.selectors import cases_page
from workflows.serializers import CaseOutput, CaseSummaryOutput
from workflows.services import metadata_parse

CASE_FILTER_PARAMETERS = [
    OpenApiParameter(name, str, description=text) for name, text in FILTER_HELP.items()
] + [
    OpenApiParameter(
        "ordering",
        str,
        enum=list(ORDERINGS),
        description="created_at or decided_at, ascending or descending with '-' "
        "(default -created_at). Ordering by decided_at lists decided cases only.",
    ),
]

CASE_LIST_PARAMETERS = [
    *CASE_FILTER_PARAMETERS,
    OpenApiParameter(
        "cursor", str, description="A position from a previous page's next or previous link."
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"Page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
    ),
]


class CasePageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CaseSummaryOutput(many=True)


def _summaries(cases: list[Case], reader: CaseListReader) -> list[Any]:
    """The cases rendered as each may be seen: one serializer per kind of visibility
    (building a serializer costs more than rendering a case with it)."""
    groups: dict[CaseVisibility, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        groups[reader.visibility(case)].append(index)
    rendered: list[Any] = [None] * len(cases)
    for visibility, indexes in groups.items():
        data = CaseSummaryOutput(
            [cases[i] for i in indexes], many=True, context={"visibility": visibility}
        ).data
        for index, item in zip(indexes, data, strict=True):
            rendered[index] = item
    return rendered


class CaseCreateApi(APIView):
    """The workflow's cases: list them (GET) and submit one (POST)."""

    parser_classes = [StrictMultiPartParser, FormParser]

    @extend_schema(
        operation_id="case_list",
        parameters=CASE_LIST_PARAMETERS,
        responses={
            200: CasePageOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        """The workflow's cases, newest first, a page at a time (cursor pagination), for
        its reviewers and admins. Filters on what the model did are for those who may see
        it (admins, submitters); other reviewers see each case as the case API shows it."""
        reader = access_case_list(request.user, slug)
        filters = case_filters_parse(request.query_params, workflow=reader.workflow)
        case_list_filters_check(reader, filters.model_revealing())
        limit = case_list_limit(request.query_params)
        page = cases_page(
            workflow=reader.workflow,
            filters=filters,
            cursor=request.query_params.get("cursor") or None,
            limit=limit,
        )

        def link(cursor: str | None) -> str | None:
            if cursor is None:
                return None
            query = request.query_params.copy()
            query["cursor"] = cursor
            return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

        return Response(
            {
                "next": link(page.next_cursor),
                "previous": link(page.previous_cursor),
                "results": _summaries(page.cases, reader),
            }
        )

    class InputSerializer(serializers.Serializer):
        image = serializers.FileField(help_text="The image (PNG, JPEG, WebP, BMP or TIFF).")
        external_id = serializers.CharField(
            required=False, allow_null=True, max_length=255, help_text="Idempotency key."
        )
        metadata = serializers.CharField(
            required=False, allow_blank=True, help_text="A JSON object, as text."
        )

    @extend_schema(
        operation_id="case_create",
        request={"multipart/form-data": InputSerializer},
        responses={
            201: CaseOutput,
            200: OpenApiResponse(CaseOutput, description="A case with this external_id exists."),
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(
                ERROR_RESPONSE, description="`archived`: the workflow takes no new cases."
            ),
            413: ERROR_RESPONSE,
            415: ERROR_RESPONSE,
        },
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_submit")
        upload = request.FILES.get("image")
        if upload is None:
            raise InvalidInput(
                "image: an image file is required (multipart field 'image')", field="image"
            )
        if upload.size is not None and upload.size > settings.LOOPGATE_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(
                f"image: {upload.size} bytes is over the limit of "
                f"{settings.LOOPGATE_MAX_UPLOAD_BYTES} bytes",
                field="image",
            )
        fields = request.data
        if not isinstance(fields, Mapping):
            raise InvalidInput("body: expected multipart form fields", field="body")
        external_id = fields.get("external_id")
        if external_id is not None and not isinstance(external_id, str):
            raise InvalidInput("external_id: must be a string", field="external_id")
        metadata = metadata_parse(fields.get("metadata"))
        result = case_create(
            workflow=workflow,
            image_data=upload.read(),
            external_id=external_id or None,
            metadata=metadata,
            submitted_by=request.user,
        )
        return Response(
            CaseOutput(
                result.case, context={"visibility": case_visibility(request.user, result.case)}
            ).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class CaseRetryApi(APIView):
    @extend_schema(
        operation_id="case_retry",
        request=None,
        responses={200: CaseOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE, 409: ERROR_RESPONSE},
    )
    def post(self, request: AuthenticatedRequest, case_id: str) -> Response:
        """Put a ``failed`` case back in the queue (workflow admins)."""
        case, _ = access_case(request.user, case_id)
        if not has_right(request.user, case.workflow, "can_admin"):
            raise Forbidden(f"you may not retry cases in workflow {case.workflow.slug!r}")
        case = case_retry(case=case, actor=request.user)
        return Response(
            CaseOutput(case, context={"visibility": case_visibility(request.user, case)}).data
        )
