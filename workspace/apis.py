"""REST endpoints for workflows: the list, one workflow, and its statistics."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.apischema import ERROR_RESPONSE
from kernel.errors import InvalidInput
from workflows.access import access_workflow, workflows_visible
from workspace.presenters import workflow_stats_data
from workspace.selectors import LABEL_SOURCES, LABELS_UNBIASED, workflow_stats
from workspace.serializers import WorkflowOutput


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
        parameters=[
            OpenApiParameter(
                "labels",
                str,
                enum=sorted(LABEL_SOURCES),
                description="Which human labels accuracy is measured on: `unbiased` "
                "(default: shadow, assistance, audits) or `all` human verdicts (adds the "
                "low-confidence and class-rule reviews, biased toward hard cases).",
            )
        ],
        responses={
            200: OpenApiResponse(description="Counts, automation rate, accuracy, queue."),
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        labels = request.query_params.get("labels", LABELS_UNBIASED)
        if labels not in LABEL_SOURCES:
            raise InvalidInput(
                f"labels: must be one of {', '.join(sorted(LABEL_SOURCES))}", field="labels"
            )
        return Response(workflow_stats_data(workflow_stats(workflow=workflow, labels=labels)))
