"""REST endpoints for webhooks (workflow admins): register, list, change, delete, rotate
the secret, read the delivery log, redeliver."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import AuthenticatedRequest
from integrations import services
from integrations.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from integrations.serializers import (
    DeliveryOutput,
    SecretOutput,
    WebhookCreateInput,
    WebhookOutput,
    WebhookUpdateInput,
    WebhookWithSecretOutput,
)
from kernel.apischema import ERROR_RESPONSE
from kernel.bounds import ID_MAX
from kernel.errors import InvalidInput, NotFound
from kernel.pagination import PAGE_PARAMETERS, BoundedLimitOffsetPagination, paginated
from kernel.parsers import StrictJSONParser
from workflows.access import access_workflow
from workflows.models import Workflow


def _valid(serializer_class: type, data: Any) -> dict[str, Any]:
    """Validate ``data``; fields the serializer does not know are refused, not ignored."""
    serializer = serializer_class(data=data)
    unknown = set(data) - set(serializer.fields)
    if unknown:
        raise InvalidInput(f"unknown fields: {sorted(unknown)}", field=sorted(unknown)[0])
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _webhook(user: Any, slug: str, webhook_id: int) -> Webhook:
    workflow = access_workflow(user, slug, "can_admin")
    if not 0 < webhook_id <= ID_MAX:
        raise NotFound(f"webhook {webhook_id} not found")
    webhook = (
        Webhook.objects.select_related("workflow").filter(workflow=workflow, pk=webhook_id).first()
    )
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return webhook


def _workflow_webhooks(workflow: Workflow) -> QuerySet[Webhook]:
    return Webhook.objects.filter(workflow=workflow).select_related("workflow").order_by("id")


class WebhookListApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="webhook_list",
        responses={200: WebhookOutput(many=True), 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description="The workflow's webhooks (their secrets are never shown again).",
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        return Response(WebhookOutput(_workflow_webhooks(workflow), many=True).data)

    @extend_schema(
        operation_id="webhook_create",
        request=WebhookCreateInput,
        responses={
            201: WebhookWithSecretOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
        },
        description=(
            "Register an endpoint for some of the workflow's events. The answer holds the "
            "signing `secret`, shown this once. The URL must be http(s), without "
            "credentials, and resolve to public addresses only (SSRF guard; "
            "`LOOPGATE_WEBHOOK_ALLOWED_HOSTS` lists exceptions)."
        ),
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = _valid(WebhookCreateInput, request.data)
        created = services.webhook_create(
            workflow=workflow,
            url=data["url"],
            events=data["events"],
            description=data.get("description", ""),
            actor=request.user,
        )
        created.webhook.secret = created.secret
        return Response(
            WebhookWithSecretOutput(created.webhook).data, status=status.HTTP_201_CREATED
        )


class WebhookDetailApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="webhook_retrieve",
        responses={200: WebhookOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    def get(self, request: Request, slug: str, webhook_id: int) -> Response:
        return Response(WebhookOutput(_webhook(request.user, slug, webhook_id)).data)

    @extend_schema(
        operation_id="webhook_update",
        request=WebhookUpdateInput,
        responses={
            200: WebhookOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description="Change the URL, events, description, or pause (`active: false`).",
    )
    def patch(self, request: Request, slug: str, webhook_id: int) -> Response:
        webhook = _webhook(request.user, slug, webhook_id)
        data = _valid(WebhookUpdateInput, request.data)
        webhook = services.webhook_update(webhook=webhook, **data)
        return Response(WebhookOutput(webhook).data)

    @extend_schema(
        operation_id="webhook_delete",
        request=None,
        responses={204: None, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description="Delete the webhook, its pending deliveries and its delivery log.",
    )
    def delete(self, request: Request, slug: str, webhook_id: int) -> Response:
        services.webhook_delete(webhook=_webhook(request.user, slug, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(APIView):
    @extend_schema(
        operation_id="webhook_rotate_secret",
        request=None,
        responses={200: SecretOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description=(
            "A new signing secret, shown this once; every delivery from now on (retries "
            "included) is signed with it."
        ),
    )
    def post(self, request: Request, slug: str, webhook_id: int) -> Response:
        webhook = _webhook(request.user, slug, webhook_id)
        return Response({"secret": services.webhook_secret_rotate(webhook=webhook)})


class WebhookDeliveriesApi(APIView):
    @extend_schema(
        operation_id="webhook_deliveries",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter(
                "status",
                str,
                enum=DeliveryStatus.values,
                description="Only deliveries in this state.",
            ),
        ],
        responses={
            200: paginated("PaginatedDeliveryList", DeliveryOutput(many=True)),
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description="The delivery log, newest first: each delivery with every attempt.",
    )
    def get(self, request: Request, slug: str, webhook_id: int) -> Response:
        webhook = _webhook(request.user, slug, webhook_id)
        deliveries = (
            WebhookDelivery.objects.filter(webhook=webhook)
            .select_related("event")
            .prefetch_related(Prefetch("log", queryset=WebhookAttempt.objects.order_by("id")))
            .order_by("-id")
        )
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in DeliveryStatus.values:
                raise InvalidInput(
                    f"status: one of {DeliveryStatus.values}, not {wanted!r}", field="status"
                )
            deliveries = deliveries.filter(status=wanted)
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(DeliveryOutput(page, many=True).data)


class WebhookRedeliverApi(APIView):
    @extend_schema(
        operation_id="webhook_redeliver",
        request=None,
        responses={
            202: DeliveryOutput,
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
        },
        description=(
            "Send a dead or delivered event again, with the same event id and body (409 "
            "while it is still pending)."
        ),
    )
    def post(
        self, request: AuthenticatedRequest, slug: str, webhook_id: int, delivery_id: int
    ) -> Response:
        webhook = _webhook(request.user, slug, webhook_id)
        delivery = None
        if 0 < delivery_id <= ID_MAX:
            delivery = WebhookDelivery.objects.filter(webhook=webhook, pk=delivery_id).first()
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} not found")
        delivery = services.delivery_redeliver(delivery=delivery, actor=request.user)
        delivery = (
            WebhookDelivery.objects.select_related("event")
            .prefetch_related("log")
            .get(pk=delivery.pk)
        )
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)
