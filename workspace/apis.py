"""REST endpoints for workflows: the list, one workflow, and its statistics."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.apischema import ERROR_RESPONSE
from workflows.access import access_workflow, workflows_visible
from workspace.presenters import workflow_stats_data
from workspace.selectors import workflow_stats
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
        responses={200: OpenApiResponse(description="Counts, automation rate, accuracy, queue.")},
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        return Response(workflow_stats_data(workflow_stats(workflow=workflow)))
