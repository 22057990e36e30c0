"""REST endpoints for automation: the policy, its evidence, thresholds, the log, alerts.

Reading and changing automation is for workflow admins (``can_admin``): a member without
it gets 403, anyone else 404 (workflows.access). Alerts can be read by every member, so
that upstream systems and reviewers can see that a workflow stepped down.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import AuthenticatedRequest
from automation.inputs import costs_from, threshold_defaults
from automation.models import Alert, AlertState, LevelChange
from automation.presenters import (
    overview_after_change_view,
    overview_view,
    threshold_report_view,
    version_evidence_view,
)
from automation.selectors import alerts_of, evidence_by_version
from automation.serializers import (
    AlertNoteInput,
    AlertOutput,
    AutomationOutput,
    AutomationUpdateInput,
    AutomationUpdateOutput,
    LevelChangeOutput,
    ThresholdApplyInput,
    ThresholdOutput,
    ThresholdQueryInput,
    VersionEvidenceOutput,
)
from automation.services import (
    POLICY_FIELDS,
    alert_acknowledge,
    alert_resolve,
    automation_status,
    automation_threshold_apply,
    automation_update,
    threshold_advice,
)
from kernel.apischema import ERROR_RESPONSE
from kernel.bounds import ID_MAX
from kernel.errors import InvalidInput, NotFound
from kernel.pagination import PAGE_PARAMETERS, BoundedLimitOffsetPagination, paginated
from kernel.parsers import StrictJSONParser
from workflows.access import access_workflow


def _valid(serializer_class: type, data: Any) -> dict[str, Any]:
    """Validate ``data``; fields the serializer does not know are refused, not ignored."""
    serializer = serializer_class(data=data)
    unknown = set(data) - set(serializer.fields)
    if unknown:
        raise InvalidInput(f"unknown fields: {sorted(unknown)}", field=sorted(unknown)[0])
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class AutomationApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="automation_retrieve",
        responses={200: AutomationOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description=(
            "The policy, the evidence gate for `partial` and `full`, the automatic "
            "step-down window, firing alerts and the newest audit-log entries."
        ),
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        return Response(AutomationOutput(overview_view(automation_status(workflow=workflow))).data)

    @extend_schema(
        operation_id="automation_update",
        request=AutomationUpdateInput,
        responses={
            200: AutomationUpdateOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(
                ERROR_RESPONSE,
                description=(
                    "`insufficient_evidence`: the message says what is missing, judged "
                    "against the stricter of the old and new targets; `below_floor`: a "
                    "field is below its floor at `partial`/`full`."
                ),
            ),
        },
        description=(
            "Change the policy through the evidence gate (docs/decisions.md D10): raising "
            "the level to `partial`/`full`, or loosening a target, threshold, class rule or "
            "audit rate there, needs evidence against the stricter of the old and new "
            "targets, within the floors. `override` (active superusers only; 403 `override` "
            "for anyone else) passes a refusal and is logged as `overridden`."
        ),
    )
    def patch(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = _valid(AutomationUpdateInput, request.data)
        reason = data.pop("reason")
        override = data.pop("override", False)
        changes = {name: value for name, value in data.items() if name in POLICY_FIELDS}
        change = automation_update(
            workflow=workflow, actor=request.user, reason=reason, changes=changes, override=override
        )
        body = overview_after_change_view(automation_status(workflow=workflow), change)
        return Response(AutomationUpdateOutput(body).data)


class AutomationEvidenceApi(APIView):
    @extend_schema(
        operation_id="automation_evidence",
        responses={
            200: VersionEvidenceOutput(many=True),
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description=(
            "Per model version: accuracy with exact 95% intervals overall and per class, "
            "and Cohen's kappa, on unbiased labels (shadow, assistance, audit); the audited "
            "accuracy of its automated decisions; low-confidence reviews apart (biased)."
        ),
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        versions = version_evidence_view(evidence_by_version(workflow=workflow), workflow.labels)
        return Response(VersionEvidenceOutput(versions, many=True).data)


class AutomationThresholdApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="automation_threshold",
        parameters=[
            OpenApiParameter("target_error", float, description="Default: the target error."),
            OpenApiParameter("confidence", float, description="Default: evidence confidence."),
            OpenApiParameter("review_cost", float, description="Cost of one human review."),
            OpenApiParameter(
                "error_cost", float, description="Cost of one wrong automatic decision."
            ),
            OpenApiParameter(
                "class_error_costs", str, description="Per predicted label: `ok:500,crack:20`."
            ),
        ],
        responses={
            200: ThresholdOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description=(
            "The lowest confidence threshold whose error among auto-decided cases is below "
            "`target_error` with probability `confidence` (Learn-then-Test, exact binomial), "
            "its expected automation rate, and the automation-rate-versus-error curve."
        ),
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = _valid(ThresholdQueryInput, request.query_params.dict())
        target_error, confidence = threshold_defaults(workflow, data)
        advice = threshold_advice(
            workflow=workflow,
            target_error=target_error,
            confidence=confidence,
            costs=costs_from(workflow, data),
        )
        return Response(ThresholdOutput(threshold_report_view(advice)).data)

    @extend_schema(
        operation_id="automation_threshold_apply",
        request=ThresholdApplyInput,
        responses={
            200: AutomationUpdateOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(
                ERROR_RESPONSE, description="`no_threshold`: none meets the target."
            ),
        },
        description="Apply the recommended threshold: an audited change like any other.",
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = _valid(ThresholdApplyInput, request.data)
        target_error, confidence = threshold_defaults(workflow, data)
        costs = costs_from(workflow, data)
        if data.get("objective") == "cost" and costs is None:
            raise InvalidInput(
                "objective: cost needs review_cost and error_cost", field="objective"
            )
        change = automation_threshold_apply(
            workflow=workflow,
            actor=request.user,
            reason=data["reason"],
            target_error=target_error,
            confidence=confidence,
            costs=costs if data.get("objective") == "cost" else None,
        )
        body = overview_after_change_view(automation_status(workflow=workflow), change)
        return Response(AutomationUpdateOutput(body).data)


class LevelChangeListApi(APIView):
    @extend_schema(
        operation_id="automation_changes",
        parameters=PAGE_PARAMETERS,
        responses={
            200: paginated("PaginatedLevelChangeList", LevelChangeOutput(many=True)),
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description="The automation audit log, newest first (limit/offset paginated).",
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        paginator = BoundedLimitOffsetPagination()
        changes = LevelChange.objects.filter(workflow=workflow).select_related("actor")
        changes = changes.order_by("-created_at", "-id")
        page = paginator.paginate_queryset(changes, request, view=self)
        return paginator.get_paginated_response(LevelChangeOutput(page, many=True).data)


class AlertListApi(APIView):
    @extend_schema(
        operation_id="workflow_alerts",
        parameters=[
            OpenApiParameter("state", str, enum=[s.value for s in AlertState]),
        ],
        responses={200: AlertOutput(many=True), 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description="Alerts of the workflow, newest first (the 100 newest); any member may read.",
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        state = request.query_params.get("state") or None
        if state is not None and state not in AlertState.values:
            raise InvalidInput(
                f"state: must be one of {', '.join(AlertState.values)}", field="state"
            )
        return Response(AlertOutput(alerts_of(workflow=workflow, state=state), many=True).data)


def _alert_schema(operation_id: str, description: str) -> Any:
    return extend_schema(
        operation_id=operation_id,
        request=AlertNoteInput,
        responses={
            200: AlertOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
        },
        description=description,
    )


def _alert_move(request: AuthenticatedRequest, slug: str, alert_id: int, service: Any) -> Response:
    workflow = access_workflow(request.user, slug, "can_admin")
    if alert_id > ID_MAX:
        raise NotFound(f"alert {alert_id} not found")
    alert = get_object_or_404(Alert, pk=alert_id, workflow=workflow)
    data = AlertNoteInput(data=request.data)
    data.is_valid(raise_exception=True)
    moved = service(alert=alert, actor=request.user, note=data.validated_data["note"])
    return Response(AlertOutput(moved).data)


class AlertAcknowledgeApi(APIView):
    parser_classes = [StrictJSONParser]

    @_alert_schema(
        "workflow_alert_acknowledge",
        "A workflow admin acknowledges a firing alert (firing -> acknowledged): someone is "
        "on it. Who, when and the note are kept; 409 when it is not firing.",
    )
    def post(self, request: AuthenticatedRequest, slug: str, alert_id: int) -> Response:
        return _alert_move(request, slug, alert_id, alert_acknowledge)


class AlertResolveApi(APIView):
    parser_classes = [StrictJSONParser]

    @_alert_schema(
        "workflow_alert_resolve",
        "A workflow admin resolves an alert (firing or acknowledged -> resolved), saying "
        "why; 409 when it is already resolved. A condition still present fires anew.",
    )
    def post(self, request: AuthenticatedRequest, slug: str, alert_id: int) -> Response:
        return _alert_move(request, slug, alert_id, alert_resolve)
