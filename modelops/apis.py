"""REST endpoints of the model lifecycle: validate, call one service, render.

Everything here is for workflow admins (``modelops.access``), except the saliency
overlay, which follows ``workflows.access.access_case``: only users who may see the
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
from kernel import strictjson
from kernel.apischema import ERROR_RESPONSE
from kernel.bounds import ID_MAX, ID_SCHEMA, INT32_MAX, bounded_int
from kernel.errors import InvalidInput, NotFound
from kernel.parsers import StrictJSONParser, StrictMultiPartParser
from modelops.access import access_model_version, access_models, access_training_run
from modelops.comparison import versions_compare
from modelops.models import (
    DeploymentRole,
    ModelSource,
    ModelVersion,
    SaliencyStatus,
)
from modelops.retraining import (
    MAX_SEED,
    TrainingRequest,
    retrain_rule_update,
    training_run_cancel,
    training_run_start,
)
from modelops.saliency import SaliencyFailed, saliency_prediction, saliency_request
from modelops.selectors import (
    deployment_events,
    deployments_active,
    retrain_rule_of,
    rollback_target,
    training_runs_of,
    versions_of_workflow,
)
from modelops.serializers import (
    DeploymentEventOutput,
    DeploymentRoleOutput,
    ModelVersionOutput,
    TrainingRunOutput,
)
from modelops.services import (
    MAX_INPUT_SIZE,
    MIN_INPUT_SIZE,
    canary_share_update,
    deployment_create,
    deployment_end,
    deployment_promote,
    deployment_rollback,
    model_version_register,
)
from workflows.access import access_case, has_right
from workflows.models import Workflow

JSON_FIELD_MAX_BYTES = 64 * 1024
ERRORS = {400: ERROR_RESPONSE, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE, 409: ERROR_RESPONSE}


def json_field(data: Any, name: str, *, kind: type, default: Any = None) -> Any:
    """A multipart field holding JSON text (or, for lists, comma-separated values)."""
    raw = data.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, kind):
        return raw
    if not isinstance(raw, str):
        raise InvalidInput(f"{name}: must be a text field", field=name)
    try:
        value = strictjson.loads(raw, what=name, max_bytes=JSON_FIELD_MAX_BYTES)
    except strictjson.JSONRefused as exc:
        if kind is list and not raw.lstrip().startswith("["):
            value = [item.strip() for item in raw.split(",") if item.strip()]
            _refuse_bad_text(value, name)
        else:
            raise InvalidInput(exc.message, field=name) from None
    if not isinstance(value, kind):
        raise InvalidInput(f"{name}: must be a JSON {kind.__name__}", field=name)
    return value


def _refuse_bad_text(values: list[str], name: str) -> None:
    try:
        strictjson.check_value(values, what=name)
    except strictjson.JSONRefused as exc:
        raise InvalidInput(exc.message, field=name) from None


def version_of_workflow(workflow: Workflow, version_id: Any, field: str) -> ModelVersion:
    """A version registered for or deployed in ``workflow``; 404 for any other."""
    pk = bounded_int(version_id, name=field, minimum=1, maximum=ID_MAX)
    version = versions_of_workflow(workflow_id=workflow.pk).filter(pk=pk).first()
    if version is None:
        raise NotFound(f"{field}: model version {pk} is not registered for this workflow")
    return version


# --- Registry ------------------------------------------------------------------------------


class ModelVersionListApi(APIView):
    parser_classes = [StrictMultiPartParser, FormParser]

    class ModelVersionRegisterInput(serializers.Serializer):
        weights = serializers.FileField(help_text="State dict (.pt) or TorchScript archive.")
        name = serializers.CharField(max_length=100, help_text="e.g. surface-cnn")
        architecture = serializers.CharField(
            max_length=64, help_text="A torchvision architecture name, or 'torchscript'."
        )
        labels = serializers.CharField(
            required=False,
            help_text="JSON list in the model's output order; default: the workflow's.",
        )
        input_size = serializers.IntegerField(
            default=96, min_value=MIN_INPUT_SIZE, max_value=MAX_INPUT_SIZE
        )
        mean = serializers.CharField(required=False, help_text="JSON list of 3 numbers.")
        std = serializers.CharField(required=False, help_text="JSON list of 3 numbers.")
        arch_kwargs = serializers.CharField(required=False, help_text="JSON object.")
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
        training = serializers.CharField(
            required=False, help_text="JSON object: how it was trained (recorded as given)."
        )

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
        serializer = self.ModelVersionRegisterInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["weights"]
        training = json_field(request.data, "training", kind=dict, default=None)
        version = model_version_register(
            workflow=workflow,
            name=data["name"],
            architecture=data["architecture"],
            weights=upload,
            filename=upload.name,
            actor=request.user,
            source=ModelSource.API,
            labels=json_field(request.data, "labels", kind=list),
            input_size=data["input_size"],
            mean=json_field(request.data, "mean", kind=list),
            std=json_field(request.data, "std", kind=list),
            arch_kwargs=json_field(request.data, "arch_kwargs", kind=dict, default={}),
            note=data.get("note", ""),
            provenance={"training": training} if training else None,
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

    class DeploymentCreateInput(serializers.Serializer):
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


class DeploymentReasonInput(serializers.Serializer):
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

    class CanaryUpdateInput(serializers.Serializer):
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

    class PromoteInput(serializers.Serializer):
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


def comparison_pair(
    workflow: Workflow, baseline_id: Any, challenger_id: Any
) -> tuple[ModelVersion, ModelVersion]:
    """The two versions to compare; by default serving against the shadow (or canary)."""
    active = deployments_active(workflow_id=workflow.pk)
    if baseline_id:
        baseline = version_of_workflow(workflow, baseline_id, "baseline")
    elif DeploymentRole.SERVING in active:
        baseline = active[DeploymentRole.SERVING].model_version
    else:
        raise InvalidInput("baseline: no serving version; name one", field="baseline")
    if challenger_id:
        challenger = version_of_workflow(workflow, challenger_id, "challenger")
    else:
        deployed = active.get(DeploymentRole.SHADOW) or active.get(DeploymentRole.CANARY)
        if deployed is None:
            raise InvalidInput(
                "challenger: no shadow challenger or canary is deployed; name one",
                field="challenger",
            )
        challenger = deployed.model_version
    if baseline.pk == challenger.pk:
        raise InvalidInput("challenger: compare two different versions", field="challenger")
    return baseline, challenger


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

    class TrainingRunStartInput(serializers.Serializer):
        epochs = serializers.IntegerField(default=8, min_value=1, max_value=200)
        lr = serializers.FloatField(default=3e-3, min_value=1e-12, max_value=1.0)
        batch_size = serializers.IntegerField(default=32, min_value=2, max_value=1024)
        test_share = serializers.FloatField(default=0.2, min_value=0.05, max_value=0.5)
        val_share = serializers.FloatField(default=0.1, min_value=0.0, max_value=0.3)
        seed = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SEED)
        architecture = serializers.CharField(required=False, max_length=64)
        from_scratch = serializers.BooleanField(default=False)
        input_size = serializers.IntegerField(
            required=False, min_value=MIN_INPUT_SIZE, max_value=MAX_INPUT_SIZE
        )
        reason = serializers.CharField(required=False, allow_blank=True, default="")

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
        serializer = self.TrainingRunStartInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("reason", "")
        run = training_run_start(
            workflow=workflow, actor=request.user, request=TrainingRequest(**data), reason=reason
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

    class RetrainRuleInput(serializers.Serializer):
        enabled = serializers.BooleanField()
        every_n_labels = serializers.IntegerField(
            required=False, allow_null=True, min_value=10, max_value=INT32_MAX
        )
        after_step_down = serializers.BooleanField(default=False)
        epochs = serializers.IntegerField(default=8, min_value=1, max_value=200)

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
        serializer = self.RetrainRuleInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        retrain_rule_update(
            workflow=workflow,
            actor=request.user,
            enabled=data["enabled"],
            every_n_labels=data.get("every_n_labels"),
            after_step_down=data["after_step_down"],
            epochs=data["epochs"],
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
        case, show_predictions = access_case(request.user, case_id)
        if not show_predictions:
            raise NotFound(f"no saliency overlay for case {case_id}")
        raw_version = request.query_params.get("model_version")
        version_id = (
            bounded_int(raw_version, name="model_version", minimum=1, maximum=ID_MAX)
            if raw_version
            else None
        )
        chooses = version_id is not None and (
            has_right(request.user, case.workflow, "can_admin")
            or has_right(request.user, case.workflow, "can_submit")
        )
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
