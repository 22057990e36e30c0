"""The monitoring API: the series of a workflow, and its drift settings."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import AuthenticatedRequest
from kernel.apischema import ERROR_RESPONSE
from kernel.errors import InvalidInput
from kernel.parsers import StrictJSONParser
from monitoring.inputs import series_query
from monitoring.selectors import monitoring_settings_of
from monitoring.serializers import (
    MonitoringOutput,
    MonitoringSettingsInput,
    MonitoringSettingsOutput,
)
from monitoring.series import BUCKETS, monitoring_series
from monitoring.services import ACTION_FIELDS, monitoring_settings_update
from workflows.access import access_workflow


class MonitoringApi(APIView):
    @extend_schema(
        operation_id="workflow_monitoring",
        parameters=[
            OpenApiParameter("since", str, description="ISO 8601; default: until - 24 h"),
            OpenApiParameter("until", str, description="ISO 8601; default: now"),
            OpenApiParameter("range", str, enum=["1h", "6h", "24h", "7d", "30d"]),
            OpenApiParameter("bucket", str, enum=list(BUCKETS)),
            OpenApiParameter("model_version", int, description="only this model version"),
        ],
        responses={200: MonitoringOutput, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description=(
            "The workflow's monitoring series over a time range: volume, automation rate, "
            "latency percentiles by stage (queue wait, model, routing, human, total), model "
            "latency, errors by stage, queue depth and oldest age, reviewer throughput, "
            "input metrics against the reference (brightness, contrast, sharpness, ...), "
            "confidence histogram, class mix, human override rate, audited accuracy with "
            "its interval per model version, the label-free accuracy estimate, drift "
            "checks and status, alerts. Any member of the workflow may read it."
        ),
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        query = series_query(request.query_params)
        return Response(MonitoringOutput(monitoring_series(workflow=workflow, query=query)).data)


SETTINGS_OUTPUT = (
    "reference_from",
    "reference_until",
    "reference_size",
    "window",
    "check_every",
    "alpha",
    "min_effect",
    "persistence",
    "estimate_alert_below",
    *ACTION_FIELDS,
)


def _settings_view(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SETTINGS_OUTPUT}


class MonitoringSettingsApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="workflow_monitoring_settings",
        responses={200: MonitoringSettingsOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description="The drift thresholds, reference window and alert actions (admins).",
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        return Response(
            MonitoringSettingsOutput(_settings_view(monitoring_settings_of(workflow=workflow))).data
        )

    @extend_schema(
        operation_id="workflow_monitoring_settings_update",
        request=MonitoringSettingsInput,
        responses={
            200: MonitoringSettingsOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description=(
            "Change the drift thresholds and the alert actions (a new input-drift or "
            "accuracy-estimate alert may step the level down and/or start a retraining "
            "run; what it did is in the alert's `data.actions`); pin the reference window "
            "with both "
            "`reference_from` and `reference_until` (null for both: back to the default, "
            "the first cases after the serving version went live or the level was raised)."
        ),
    )
    def patch(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        unknown = sorted(set(request.data) - set(MonitoringSettingsInput().fields))
        if unknown:
            raise InvalidInput(f"unknown fields: {unknown}", field=unknown[0])
        data = MonitoringSettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = monitoring_settings_update(
            workflow=workflow, actor=request.user, changes=dict(data.validated_data)
        )
        return Response(MonitoringSettingsOutput(_settings_view(row)).data)
