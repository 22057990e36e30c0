"""REST endpoints for workflows and cases: validate, call one service, render."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from loopgate.errors import InvalidInput, PayloadTooLarge
from loopgate.parsers import StrictMultiPartParser
from workflows.access import access_case, access_workflow, workflows_visible
from workflows.selectors import workflow_stats
from workflows.serializers import CaseEventOutput, CaseOutput, WorkflowOutput
from workflows.services import case_create, metadata_parse

IMAGE_CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}

ERROR_RESPONSE = inline_serializer(
    "Error",
    fields={
        "error": inline_serializer(
            "ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "field": serializers.CharField(allow_null=True),
            },
        )
    },
)


class CaseCreateApi(APIView):
    parser_classes = [StrictMultiPartParser, FormParser]

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
            413: ERROR_RESPONSE,
            415: ERROR_RESPONSE,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
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
        external_id = request.data.get("external_id")
        if external_id is not None and not isinstance(external_id, str):
            raise InvalidInput("external_id: must be a string", field="external_id")
        metadata = metadata_parse(request.data.get("metadata"))
        result = case_create(
            workflow=workflow,
            image_data=upload.read(),
            external_id=external_id or None,
            metadata=metadata,
            submitted_by=request.user,
        )
        return Response(
            CaseOutput(result.case, context={"show_predictions": True}).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class CaseDetailApi(APIView):
    @extend_schema(operation_id="case_retrieve", responses={200: CaseOutput, 404: ERROR_RESPONSE})
    def get(self, request: Request, case_id: str) -> Response:
        case, show_predictions = access_case(request.user, case_id)
        return Response(CaseOutput(case, context={"show_predictions": show_predictions}).data)


class CaseEventsApi(APIView):
    @extend_schema(
        operation_id="case_events", responses={200: CaseEventOutput(many=True), 404: ERROR_RESPONSE}
    )
    def get(self, request: Request, case_id: str) -> Response:
        case, show_predictions = access_case(request.user, case_id)
        events = case.events.select_related("actor")
        data = CaseEventOutput(events, many=True).data
        if not show_predictions:
            # A blind reviewer sees that the case moved, not what the model said or why.
            for event in data:
                event["data"] = {}
                if event["actor_type"] == "model" or event["kind"] != "status":
                    event["reason"] = ""
        return Response(data)


class WorkflowListApi(APIView):
    @extend_schema(operation_id="workflow_list", responses={200: WorkflowOutput(many=True)})
    def get(self, request: Request) -> Response:
        workflows = workflows_visible(request.user).order_by("slug")
        return Response(WorkflowOutput(workflows, many=True, context={}).data)


class WorkflowDetailApi(APIView):
    @extend_schema(
        operation_id="workflow_retrieve", responses={200: WorkflowOutput, 404: ERROR_RESPONSE}
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        return Response(WorkflowOutput(workflow, context={}).data)


class WorkflowStatsApi(APIView):
    @extend_schema(
        operation_id="workflow_stats",
        responses={200: OpenApiResponse(description="Counts, automation rate, accuracy, queue.")},
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        return Response(workflow_stats(workflow=workflow))


class CaseImageApi(APIView):
    """The case's stored image, for members who may read the case."""

    @extend_schema(
        operation_id="case_image",
        responses={(200, "application/octet-stream"): OpenApiResponse(description="The image.")},
    )
    def get(self, request: Request, case_id: str) -> FileResponse:
        case, _ = access_case(request.user, case_id)
        content_type = IMAGE_CONTENT_TYPES.get(case.image_format, "application/octet-stream")
        response = FileResponse(case.image.open("rb"), content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response
