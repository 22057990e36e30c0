"""REST endpoints for workflows and cases: validate, call one service, render."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.apischema import ERROR_RESPONSE
from workflows.access import access_case
from workflows.serializers import CaseEventOutput, CaseOutput

IMAGE_CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


class CaseDetailApi(APIView):
    @extend_schema(operation_id="case_retrieve", responses={200: CaseOutput, 404: ERROR_RESPONSE})
    def get(self, request: Request, case_id: str) -> Response:
        case, visibility = access_case(request.user, case_id)
        return Response(CaseOutput(case, context={"visibility": visibility}).data)


class CaseEventsApi(APIView):
    @extend_schema(
        operation_id="case_events", responses={200: CaseEventOutput(many=True), 404: ERROR_RESPONSE}
    )
    def get(self, request: Request, case_id: str) -> Response:
        case, visibility = access_case(request.user, case_id)
        events = case.events.select_related("actor")
        return Response(CaseEventOutput(events, many=True, context={"visibility": visibility}).data)


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
