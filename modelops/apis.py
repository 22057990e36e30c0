"""REST endpoints of the model lifecycle: validate, call one service, render.

Everything here is for workflow admins (``modelops.access``), except the saliency
overlay, which follows ``workflows.access.case_visibility``: only users who may see the
model's suggestion for the case get it.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import AuthenticatedRequest
from kernel.apischema import ERROR_RESPONSE
from kernel.bounds import ID_MAX, ID_SCHEMA, bounded_int
from kernel.errors import NotFound
from kernel.parsers import StrictJSONParser, StrictMultiPartParser, body_object
from kernel.serializers import Serializer
from modelops.access import access_model_version, access_models, access_training_run
from modelops.comparison import versions_compare
from modelops.inputs import (
    ModelVersionRegisterInput,
    RetrainRuleInput,
    TrainingRunStartInput,
    model_version_registration,
    retrain_rule_input,
    training_run_start_input,
)
from modelops.models import (
    DeploymentRole,
    ModelSource,
    SaliencyStatus,
)
from modelops.retraining import (
    retrain_rule_update,
    training_run_cancel,
    training_run_start,
)
from modelops.saliency import SaliencyFailed, saliency_prediction, saliency_request
from modelops.selectors import (
    comparison_pair,
    deployment_events,
    deployments_active,
    retrain_rule_of,
    rollback_target,
    training_runs_of,
    version_of_workflow,
    versions_of_workflow,
)
from modelops.serializers import (
    DeploymentEventOutput,
    DeploymentRoleOutput,
    ModelVersionOutput,
    TrainingRunOutput,
)
from modelops.services import (
    canary_share_update,
    deployment_create,
    deployment_end,
    deployment_promote,
    deployment_rollback,
    model_version_register,
)
from workflows.access import access_case
from workflows.models import Workflow

ERRORS = {400: ERROR_RESPONSE, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE, 409: ERROR_RESPONSE}


# --- Registry ------------------------------------------------------------------------------


class ModelVersionListApi(APIView):
    parser_classes = [StrictMultiPartParser, FormParser]

    @extend_schema(
        operation_id="model_version_list", responses={200: ModelVersionOutput(many=True)}
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        versions = versions_of_workflow(workflow_id=workflow.pk)
        return Response(ModelVersionOutput(versions, many=True).data)

    @extend_schema(
        operation_id="model_version_register",
        request={"multipart/form-data": ModelVersionRegisterInput},
        responses={201: ModelVersionOutput, 413: ERROR_RESPONSE, **ERRORS},
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        registration = model_version_registration(body_object(request.data))
        version = model_version_register(
            workflow=workflow, actor=request.user, source=ModelSource.API, **registration
        )
        return Response(ModelVersionOutput(version).data, status=status.HTTP_201_CREATED)


class ModelVersionDetailApi(APIView):
    @extend_schema(
        operation_id="model_version_retrieve",
        responses={200: ModelVersionOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    def get(self, request: Request, version_id: str) -> Response:
        version = access_model_version(request.user, version_id)
        return Response(ModelVersionOutput(version).data)


# --- Deployments ---------------------------------------------------------------------------


def deployments_body(workflow: Workflow) -> dict[str, Any]:
    active = deployments_active(workflow_id=workflow.pk)
    target = rollback_target(workflow_id=workflow.pk)
    return {
        "workflow": workflow.slug,
        "level": workflow.level,
        "active": {
            role: DeploymentRoleOutput(active[role]).data if role in active else None
            for role in DeploymentRole.values
        },
        "rollback_target": target.tag if target else None,
        "events": DeploymentEventOutput(
            deployment_events(workflow_id=workflow.pk, limit=100), many=True
        ).data,
    }


class DeploymentListApi(APIView):
    parser_classes = [StrictJSONParser]

    class DeploymentCreateInput(Serializer):
        model_version = serializers.IntegerField(min_value=1, max_value=ID_MAX)
        role = serializers.ChoiceField(choices=DeploymentRole.values)
        traffic_share = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        reason = serializers.CharField(help_text="Why; recorded in the audit log.")

    @extend_schema(
        operation_id="deployment_list",
        responses={200: OpenApiResponse(description="Active deployments and the audit log.")},
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        return Response(deployments_body(workflow))

    @extend_schema(
        operation_id="deployment_create",
        request=DeploymentCreateInput,
        responses={201: DeploymentRoleOutput, **ERRORS},
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        serializer = self.DeploymentCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        deployment = deployment_create(
            workflow=workflow,
            model_version=version_of_workflow(workflow, data["model_version"], "model_version"),
            role=data["role"],
            traffic_share=data.get("traffic_share"),
            actor=request.user,
            reason=data["reason"],
        )
        return Response(DeploymentRoleOutput(deployment).data, status=status.HTTP_201_CREATED)


class DeploymentReasonInput(Serializer):
    reason = serializers.CharField(help_text="Why; recorded in the audit log.")


class DeploymentEndApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="deployment_end",
        request=DeploymentReasonInput,
        responses={200: DeploymentRoleOutput, **ERRORS},
    )
    def post(self, request: AuthenticatedRequest, slug: str, role: str) -> Response:
        workflow = access_models(request.user, slug)
        serializer = DeploymentReasonInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        deployment = deployment_end(
            workflow=workflow,
            role=role,
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response(DeploymentRoleOutput(deployment).data)


class CanaryApi(APIView):
    parser_classes = [StrictJSONParser]

    class CanaryUpdateInput(Serializer):
        traffic_share = serializers.FloatField(min_value=0.0, max_value=1.0)
        reason = serializers.CharField(help_text="Why; recorded in the audit log.")

    @extend_schema(
        operation_id="canary_update",
        request=CanaryUpdateInput,
        responses={200: DeploymentRoleOutput, **ERRORS},
    )
    def patch(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        serializer = self.CanaryUpdateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        deployment = canary_share_update(
            workflow=workflow,
            traffic_share=serializer.validated_data["traffic_share"],
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response(DeploymentRoleOutput(deployment).data)


class PromoteApi(APIView):
    parser_classes = [StrictJSONParser]

    class PromoteInput(Serializer):
        role = serializers.ChoiceField(
            choices=[DeploymentRole.SHADOW.value, DeploymentRole.CANARY.value],
            default=DeploymentRole.SHADOW.value,
        )
        model_version = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=ID_MAX,
            help_text="The version you expect in that role; 409 if it changed meanwhile.",
        )
        reason = serializers.CharField(help_text="Why; recorded in the audit log.")

    @extend_schema(
        operation_id="deployment_promote",
        request=PromoteInput,
        responses={200: DeploymentRoleOutput, **ERRORS},
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        serializer = self.PromoteInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        deployment = deployment_promote(
            workflow=workflow,
            role=data["role"],
            expected_version_id=data.get("model_version"),
            actor=request.user,
            reason=data["reason"],
        )
        return Response(DeploymentRoleOutput(deployment).data)


class RollbackApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="deployment_rollback",
        request=DeploymentReasonInput,
        responses={200: DeploymentRoleOutput, **ERRORS},
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        serializer = DeploymentReasonInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        deployment = deployment_rollback(
            workflow=workflow, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(DeploymentRoleOutput(deployment).data)


# --- Comparison ----------------------------------------------------------------------------


class ComparisonApi(APIView):
    @extend_schema(
        operation_id="model_comparison",
        parameters=[
            OpenApiParameter("baseline", ID_SCHEMA, description="Version id; default: serving."),
            OpenApiParameter(
                "challenger", ID_SCHEMA, description="Version id; default: shadow, else canary."
            ),
        ],
        responses={
            200: OpenApiResponse(
                description="Paired accuracy with CIs, per-class precision/recall, confusion, "
                "reliability, latency, exact McNemar test and the verdict."
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        baseline, challenger = comparison_pair(
            workflow, request.query_params.get("baseline"), request.query_params.get("challenger")
        )
        comparison = versions_compare(workflow=workflow, baseline=baseline, challenger=challenger)
        return Response(comparison.as_dict())


# --- Retraining ----------------------------------------------------------------------------


class TrainingRunListApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(operation_id="training_run_list", responses={200: TrainingRunOutput(many=True)})
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        return Response(
            TrainingRunOutput(training_runs_of(workflow_id=workflow.pk), many=True).data
        )

    @extend_schema(
        operation_id="training_run_start",
        request=TrainingRunStartInput,
        responses={202: TrainingRunOutput, **ERRORS},
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        training, reason = training_run_start_input(body_object(request.data))
        run = training_run_start(
            workflow=workflow, actor=request.user, request=training, reason=reason
        )
        run.refresh_from_db()
        return Response(TrainingRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(APIView):
    @extend_schema(
        operation_id="training_run_retrieve",
        parameters=[
            OpenApiParameter("include", str, description="'split' adds the case ids of each part.")
        ],
        responses={200: TrainingRunOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = access_training_run(request.user, run_id)
        body = TrainingRunOutput(run).data
        if request.query_params.get("include") == "split":
            body["split"] = run.split
        return Response(body)


class TrainingRunCancelApi(APIView):
    @extend_schema(
        operation_id="training_run_cancel",
        request=None,
        responses={200: TrainingRunOutput, **ERRORS},
    )
    def post(self, request: AuthenticatedRequest, run_id: str) -> Response:
        run = access_training_run(request.user, run_id)
        run = training_run_cancel(run=run, actor=request.user)
        return Response(TrainingRunOutput(run).data)


class RetrainRuleApi(APIView):
    parser_classes = [StrictJSONParser]

    def _body(self, workflow: Workflow) -> dict[str, Any]:
        rule = retrain_rule_of(workflow_id=workflow.pk)
        return {
            "enabled": rule.enabled,
            "every_n_labels": rule.every_n_labels,
            "after_step_down": rule.after_step_down,
            "epochs": rule.epochs,
            "labels_at_last_trigger": rule.labels_at_last_trigger,
            "last_triggered_at": rule.last_triggered_at,
        }

    @extend_schema(operation_id="retrain_rule_retrieve", responses={200: RetrainRuleInput})
    def get(self, request: Request, slug: str) -> Response:
        return Response(self._body(access_models(request.user, slug)))

    @extend_schema(
        operation_id="retrain_rule_update",
        request=RetrainRuleInput,
        responses={200: RetrainRuleInput, **ERRORS},
    )
    def put(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_models(request.user, slug)
        retrain_rule_update(
            workflow=workflow, actor=request.user, **retrain_rule_input(body_object(request.data))
        )
        return Response(self._body(workflow))


# --- Saliency ------------------------------------------------------------------------------


class SaliencyApi(APIView):
    """The Grad-CAM overlay of a case (a PNG the size of the case image), or 202 while the
    worker computes it. 404 for anyone who may not see the model's suggestion."""

    @extend_schema(
        operation_id="case_saliency",
        parameters=[
            OpenApiParameter(
                "model_version",
                ID_SCHEMA,
                description="Admins and submitters: explain this version's prediction "
                "(reviewers always get the suggestion they were shown).",
            )
        ],
        responses={
            (200, "image/png"): OpenApiResponse(description="The overlay."),
            202: OpenApiResponse(description="Being computed; ask again after Retry-After."),
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            422: ERROR_RESPONSE,
        },
    )
    def get(self, request: Request, case_id: str) -> Response | FileResponse:
        case, visibility = access_case(request.user, case_id)
        if not visibility.saliency:
            raise NotFound(f"no saliency overlay for case {case_id}")
        raw_version = request.query_params.get("model_version")
        version_id = (
            bounded_int(raw_version, name="model_version", minimum=1, maximum=ID_MAX)
            if raw_version
            else None
        )
        chooses = version_id is not None and visibility.choose_model_version
        prediction = saliency_prediction(
            case=case, model_version_id=version_id if chooses else None
        )
        overlay = saliency_request(case=case, prediction=prediction)
        if overlay.status == SaliencyStatus.FAILED:
            raise SaliencyFailed(f"the overlay could not be computed: {overlay.error}")
        if overlay.status != SaliencyStatus.READY:
            response: Response | FileResponse = Response(
                {"status": overlay.status, "retry_after": 1}, status=status.HTTP_202_ACCEPTED
            )
            response["Retry-After"] = "1"
            return response
        response = FileResponse(overlay.image.open("rb"), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        response["X-Model-Version"] = prediction.model_version.tag
        response["X-Saliency-Label"] = overlay.label
        return response
