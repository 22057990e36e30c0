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
from kernel.bounds import bounded_int
from kernel.errors import Forbidden, InvalidInput, PayloadTooLarge
from kernel.parsers import StrictJSONParser, StrictMultiPartParser, body_object
from kernel.serializers import Serializer
from processing.bulk import bulk_limits_check, cases_bulk_create, manifest_parse
from processing.deadlines import MAX_DEADLINE_SECONDS, deadline_parse, workflow_fallback_set
from processing.services import case_create, case_retry
from processing.waiting import ROUTED, case_wait_routed
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
from workflows.models import Case, Workflow
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


class CasePageOutput(Serializer):
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


WAIT_MAX_SCHEMA = settings.LOOPGATE_CASE_WAIT_MAX_SECONDS


def wait_seconds(raw: str | None) -> int:
    """``?wait=N``: 0 to LOOPGATE_CASE_WAIT_MAX_SECONDS whole seconds (400 otherwise)."""
    if raw is None or raw == "":
        return 0
    return bounded_int(raw, name="wait", minimum=0, maximum=settings.LOOPGATE_CASE_WAIT_MAX_SECONDS)


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

    class InputSerializer(Serializer):
        image = serializers.FileField(help_text="The image (PNG, JPEG, WebP, BMP or TIFF).")
        external_id = serializers.CharField(
            required=False, allow_null=True, max_length=255, help_text="Idempotency key."
        )
        metadata = serializers.CharField(
            required=False, allow_blank=True, help_text="A JSON object, as text."
        )
        deadline_seconds = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=MAX_DEADLINE_SECONDS,
            help_text="Seconds from now by which a decision is due (or `deadline`).",
        )
        deadline = serializers.DateTimeField(
            required=False,
            help_text=(
                "When a decision is due (ISO 8601 with a time zone). Past it, a case "
                "still in review gets the workflow's fallback."
            ),
        )

    @extend_schema(
        operation_id="case_create",
        parameters=[
            OpenApiParameter(
                "wait",
                {"type": "integer", "minimum": 0, "maximum": WAIT_MAX_SCHEMA},
                description=(
                    "Seconds to wait for the case to be routed (decided, sent to review, "
                    "or failed) before answering; at most LOOPGATE_CASE_WAIT_MAX_SECONDS "
                    "(30 by default). The answer is 201 (200 for an existing external_id) "
                    "either way, with the case as it is then."
                ),
            )
        ],
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
        wait = wait_seconds(request.query_params.get("wait"))
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
        deadline_at = deadline_parse(
            seconds=fields.get("deadline_seconds"), at=fields.get("deadline")
        )
        result = case_create(
            workflow=workflow,
            image_data=upload.read(),
            external_id=external_id or None,
            metadata=metadata,
            submitted_by=request.user,
            deadline_at=deadline_at,
        )
        case = result.case
        context: dict[str, Any] = {}
        if wait and case.status not in ROUTED:
            # Routed, or the deadline passed: answer with the case as it is now.
            case_wait_routed(case_id=case.id, timeout=wait)
            case = Case.objects.select_related("workflow").get(pk=case.id)
        elif result.created:
            # Stored a moment ago in this request: no model has run on it yet.
            context["predictions"] = []
        context["visibility"] = case_visibility(request.user, case)
        return Response(
            CaseOutput(case, context=context).data,
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


class BulkResultOutput(Serializer):
    file = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.IntegerField(help_text="What the single endpoint would have answered.")
    id = serializers.UUIDField(allow_null=True)
    error = serializers.JSONField(allow_null=True, help_text='{"code", "message", "field"}')


class BulkOutput(Serializer):
    results = BulkResultOutput(many=True)
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    failed = serializers.IntegerField()


class CaseBulkCreateApi(APIView):
    parser_classes = [StrictMultiPartParser]
    # A bulk request spends one unit of the caller's rate per item (D115). The item
    # count is known only once the body is read, so the throttles run from ``post``.
    throttle_cost: int | None = None

    def check_throttles(self, request: Request) -> None:
        if self.throttle_cost is not None:
            super().check_throttles(request)

    class BulkInputSerializer(Serializer):
        images = serializers.ListField(child=serializers.FileField(), help_text="The images.")
        manifest = serializers.CharField(
            required=False,
            help_text=(
                'A JSON list, one object per image: {"file": the uploaded file name, '
                '"external_id", "metadata"}. Without it each image is one item.'
            ),
        )

    @extend_schema(
        operation_id="case_bulk_create",
        request={"multipart/form-data": BulkInputSerializer},
        responses={
            207: BulkOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            413: ERROR_RESPONSE,
            415: ERROR_RESPONSE,
        },
        description=(
            "Submit many images in one request. Each item is stored (or refused) exactly "
            "as `POST …/cases/` would store it, in its own transaction: 207 with one "
            "result per item, in manifest order (`status` 201, 200 for an existing "
            "`external_id`, or the 4xx with its `error`). The request as a whole is "
            "refused (nothing stored) for a bad manifest, a file named twice, or more "
            "than `LOOPGATE_BULK_MAX_ITEMS` items / `LOOPGATE_BULK_MAX_BYTES` bytes. "
            "Each item counts as one request against the caller's rate: 429 with "
            "`Retry-After` (nothing stored) when the items do not fit in what is left "
            "of it, 400 when they are more than the whole rate."
        ),
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_submit")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        # Multipart framing costs a little per part; refuse a body plainly too large
        # before reading it.
        if length > settings.LOOPGATE_BULK_MAX_BYTES + 1024 * 1024:
            raise PayloadTooLarge(
                f"body: {length} bytes is over the limit of "
                f"{settings.LOOPGATE_BULK_MAX_BYTES} bytes of images",
                field="images",
            )
        uploads = request.FILES.getlist("images")
        names = [upload.name or "" for upload in uploads]
        bulk_limits_check(
            count=len(uploads), total_bytes=sum(upload.size or 0 for upload in uploads)
        )
        self.throttle_cost = len(uploads)
        self.check_throttles(request)
        fields = request.data
        if not isinstance(fields, Mapping):
            raise InvalidInput("body: expected multipart form fields", field="body")
        items = manifest_parse(fields.get("manifest"), file_names=names)
        by_name = dict(zip(names, uploads, strict=True))
        results = cases_bulk_create(
            workflow=workflow,
            items=items,
            read=lambda name: by_name[name].read(),
            submitted_by=request.user,
        )
        return Response(
            {
                "results": [
                    {
                        "file": r.file,
                        "external_id": r.external_id,
                        "status": r.status,
                        "id": r.id,
                        "error": r.error,
                    }
                    for r in results
                ],
                "created": sum(r.status == 201 for r in results),
                "existing": sum(r.status == 200 for r in results),
                "failed": sum(r.error is not None for r in results),
            },
            status=status.HTTP_207_MULTI_STATUS,
        )


class FallbackSerializer(Serializer):
    action = serializers.ChoiceField(choices=["none", "label", "escalate", "model"])
    label = serializers.CharField(required=False, allow_blank=True, max_length=64)  # type: ignore[assignment]  # field, not the attribute (stubs)
    threshold = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, max_value=1.0
    )


class WorkflowFallbackApi(APIView):
    parser_classes = [StrictJSONParser]

    @staticmethod
    def _body(workflow: Workflow) -> dict[str, Any]:
        return {
            "action": workflow.fallback_action,
            "label": workflow.fallback_label,
            "threshold": workflow.fallback_threshold,
        }

    @extend_schema(
        operation_id="workflow_fallback",
        responses={200: FallbackSerializer, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description="What happens to a case in review when its deadline passes.",
    )
    def get(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        return Response(self._body(workflow))

    @extend_schema(
        operation_id="workflow_fallback_set",
        request=FallbackSerializer,
        responses={
            200: FallbackSerializer,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description=(
            "`label`: decide with the safe `label`; `model`: the model's answer if its "
            "confidence is at least `threshold`, else escalate; `escalate`: to the "
            "workflow's admins; `none`: record only. Workflow admins."
        ),
    )
    def put(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = body_object(request.data)
        unknown = sorted(set(data) - {"action", "label", "threshold"})
        if unknown:
            raise InvalidInput(f"unknown fields: {unknown}", field=unknown[0])
        serializer = FallbackSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        valid = serializer.validated_data
        workflow = workflow_fallback_set(
            workflow=workflow,
            action=valid["action"],
            label=valid.get("label", ""),
            threshold=valid.get("threshold"),
        )
        return Response(self._body(workflow))
