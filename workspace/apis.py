"""REST endpoints for workflows: the list, one workflow, its statistics, and running it —
creating it, its settings, archiving, its members and its API tokens.

Reading a workflow is for its members; changing it is for its admins (403 for other
members, 404 for everyone else: ``workflows.access``). Creating one needs the
``workflows.add_workflow`` permission (or a superuser). Every write is one service of
``workspace.services``, which the settings pages, the Django admin and the management
commands call too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import AuthenticatedRequest
from kernel.apischema import ERROR_RESPONSE
from kernel.bounds import ID_MAX, ID_SCHEMA, bounded_int
from kernel.errors import InvalidInput
from kernel.parsers import StrictJSONParser, StrictMultiPartParser, body_object
from workflows.access import access_label_example, access_workflow
from workflows.apis import IMAGE_CONTENT_TYPES
from workflows.selectors import label_examples
from workspace.presenters import workflow_stats_data
from workspace.selectors import (
    LABEL_SOURCES,
    LABELS_UNBIASED,
    members_of,
    workflow_stats,
    workflow_tokens,
    workflows_listed,
)
from workspace.serializers import (
    InvitationOutput,
    LabelExampleCreateInput,
    LabelExampleOutput,
    MemberLinkOutput,
    MembershipCreateInput,
    MembershipOutput,
    MembershipUpdateInput,
    WorkflowCreateInput,
    WorkflowOutput,
    WorkflowTokenCreatedOutput,
    WorkflowTokenCreateInput,
    WorkflowTokenOutput,
    WorkflowUpdateInput,
)
from workspace.services import (
    REVIEW_SETTINGS,
    UPDATE_FIELDS,
    label_example_add,
    label_example_remove,
    label_example_upload_read,
    membership_add,
    membership_link_renew,
    membership_remove,
    membership_role_set,
    policy_fields_refuse,
    token_expiry,
    workflow_archive,
    workflow_create,
    workflow_token_create,
    workflow_token_revoke,
    workflow_unarchive,
    workflow_update,
)

CREATE_FIELDS = (
    "slug",
    "name",
    "labels",
    "description",
    "instructions",
    "label_settings",
    "training_augmentation",
)
ARCHIVED_CHOICES = ("exclude", "include", "only")


def _body(
    request: Request, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    data = dict(body_object(request.data))
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown fields: {unknown}", field=unknown[0])
    for name in required:
        if name not in data:
            raise InvalidInput(f"{name}: this field is required", field=name)
    return data


NOT_FOUND_OR_FORBIDDEN = {403: ERROR_RESPONSE, 404: ERROR_RESPONSE}


class WorkflowListApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="workflow_list",
        parameters=[
            OpenApiParameter(
                "archived",
                str,
                enum=list(ARCHIVED_CHOICES),
                description="Archived workflows: left out (default), included, or only them.",
            )
        ],
        responses={200: WorkflowOutput(many=True), 400: ERROR_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        archived = request.query_params.get("archived", "exclude")
        if archived not in ARCHIVED_CHOICES:
            raise InvalidInput(f"archived: one of {', '.join(ARCHIVED_CHOICES)}", field="archived")
        workflows = workflows_listed(request.user, archived=archived).order_by("slug")
        return Response(WorkflowOutput(workflows, many=True, context={}).data)

    @extend_schema(
        operation_id="workflow_create",
        request=WorkflowCreateInput,
        responses={
            201: WorkflowOutput,
            400: OpenApiResponse(
                ERROR_RESPONSE,
                description="A bad field (named in `field`); `policy_field`: the automation "
                "policy is set only through the automation endpoint.",
            ),
            403: ERROR_RESPONSE,
            409: OpenApiResponse(ERROR_RESPONSE, description="`slug_taken`"),
        },
        description=(
            "Create a workflow (superusers and users with the `workflows.add_workflow` "
            "permission). It starts at `human_only`, always; the creator becomes its admin "
            "and a reviewer."
        ),
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = dict(body_object(request.data))
        policy_fields_refuse(data)
        data = _body(request, (*CREATE_FIELDS, *REVIEW_SETTINGS), ("slug", "name", "labels"))
        workflow = workflow_create(creator=request.user, **data)
        return Response(WorkflowOutput(workflow, context={}).data, status=201)


class WorkflowDetailApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="workflow_retrieve", responses={200: WorkflowOutput, 404: ERROR_RESPONSE}
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        return Response(WorkflowOutput(workflow, context={}).data)

    @extend_schema(
        operation_id="workflow_update",
        request=WorkflowUpdateInput,
        responses={
            200: WorkflowOutput,
            400: ERROR_RESPONSE,
            **NOT_FOUND_OR_FORBIDDEN,
            409: OpenApiResponse(
                ERROR_RESPONSE,
                description="`label_in_use`: a label with data cannot be renamed or removed "
                "(archive instead); `level_too_high`: labels cannot be added while the model "
                "decides cases.",
            ),
        },
        description=(
            "Change a workflow's settings (its admins). The automation policy is refused "
            "here (400 `policy_field`): it changes through the automation endpoint."
        ),
    )
    def patch(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = dict(body_object(request.data))
        policy_fields_refuse(data, slug=workflow.slug)
        if "slug" in data:
            raise InvalidInput(
                "slug: a workflow's slug never changes (it is in URLs)", field="slug"
            )
        data = _body(request, UPDATE_FIELDS)
        workflow = workflow_update(workflow=workflow, actor=request.user, changes=data)
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


class WorkflowArchiveApi(APIView):
    @extend_schema(
        operation_id="workflow_archive",
        request=None,
        responses={200: WorkflowOutput, **NOT_FOUND_OR_FORBIDDEN},
        description="Archive (idempotent): no new cases, left out of default lists; "
        "nothing is deleted.",
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        workflow = workflow_archive(workflow=workflow, actor=request.user)
        return Response(WorkflowOutput(workflow, context={}).data)


class WorkflowUnarchiveApi(APIView):
    @extend_schema(
        operation_id="workflow_unarchive",
        request=None,
        responses={200: WorkflowOutput, **NOT_FOUND_OR_FORBIDDEN},
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        workflow = workflow_unarchive(workflow=workflow, actor=request.user)
        return Response(WorkflowOutput(workflow, context={}).data)


class MemberListApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="member_list",
        responses={200: MembershipOutput(many=True), **NOT_FOUND_OR_FORBIDDEN},
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        return Response(MembershipOutput(members_of(workflow=workflow), many=True).data)

    @extend_schema(
        operation_id="member_add",
        request=MembershipCreateInput,
        responses={
            201: InvitationOutput,
            400: ERROR_RESPONSE,
            **NOT_FOUND_OR_FORBIDDEN,
            409: OpenApiResponse(ERROR_RESPONSE, description="`already_member`"),
        },
        description=(
            "Add a person as `reviewer` or `admin`. A username nobody has yet gets a new "
            "account without a password; `set_password_url`, in this response only, is a "
            "one-time link for them to choose one (also emailed when `email` is given and "
            "email is configured)."
        ),
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = _body(request, ("username", "role", "email"), ("username", "role"))
        invitation = membership_add(
            workflow=workflow,
            actor=request.user,
            site_url=request.build_absolute_uri("/").rstrip("/"),
            **data,
        )
        body = dict(MembershipOutput(invitation.membership).data)
        path = invitation.set_password_path
        body.update(
            created_account=invitation.created_account,
            set_password_url=request.build_absolute_uri(path) if path else None,
            emailed=invitation.emailed,
        )
        return Response(body, status=201)


class MemberDetailApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="member_update",
        request=MembershipUpdateInput,
        responses={
            200: MembershipOutput,
            400: ERROR_RESPONSE,
            **NOT_FOUND_OR_FORBIDDEN,
            409: OpenApiResponse(ERROR_RESPONSE, description="`last_admin`"),
        },
    )
    def patch(self, request: AuthenticatedRequest, slug: str, username: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = _body(request, ("role",), ("role",))
        membership = membership_role_set(
            workflow=workflow, actor=request.user, username=username, role=data["role"]
        )
        return Response(MembershipOutput(membership).data)

    @extend_schema(
        operation_id="member_remove",
        request=None,
        responses={
            204: None,
            **NOT_FOUND_OR_FORBIDDEN,
            409: OpenApiResponse(ERROR_RESPONSE, description="`last_admin`"),
        },
    )
    def delete(self, request: AuthenticatedRequest, slug: str, username: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        membership_remove(workflow=workflow, actor=request.user, username=username)
        return Response(status=204)


class MemberLinkApi(APIView):
    @extend_schema(
        operation_id="member_link_renew",
        request=None,
        responses={
            200: MemberLinkOutput,
            **NOT_FOUND_OR_FORBIDDEN,
            409: OpenApiResponse(
                ERROR_RESPONSE,
                description="`not_pending`: the account is in use, or shared with another "
                "workflow.",
            ),
        },
        description=(
            "A new one-time set-password link for an invited member who has not chosen a "
            "password yet (the earlier link stops working once a password is set)."
        ),
    )
    def post(self, request: AuthenticatedRequest, slug: str, username: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        path = membership_link_renew(workflow=workflow, actor=request.user, username=username)
        return Response(
            {"username": username, "set_password_url": request.build_absolute_uri(path)}
        )


class TokenListApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="workflow_token_list",
        responses={200: WorkflowTokenOutput(many=True), **NOT_FOUND_OR_FORBIDDEN},
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        return Response(WorkflowTokenOutput(workflow_tokens(workflow=workflow), many=True).data)

    @extend_schema(
        operation_id="workflow_token_create",
        request=WorkflowTokenCreateInput,
        responses={
            201: WorkflowTokenCreatedOutput,
            400: ERROR_RESPONSE,
            **NOT_FOUND_OR_FORBIDDEN,
            409: OpenApiResponse(ERROR_RESPONSE, description="`archived`"),
        },
        description=(
            "A token that may submit cases to this workflow only (its own upstream "
            "account). `key` is in this response only: it is stored hashed."
        ),
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        data = _body(request, ("name", "expires_at", "expires_in_days"), ("name",))
        expires_at = None
        if data.get("expires_at") is not None:
            try:
                expires_at = serializers.DateTimeField().to_internal_value(data["expires_at"])
            except serializers.ValidationError:
                raise InvalidInput(
                    "expires_at: a date and time like 2027-01-31T00:00:00Z", field="expires_at"
                ) from None
        expires = token_expiry(expires_at=expires_at, expires_in_days=data.get("expires_in_days"))
        row, key = workflow_token_create(
            workflow=workflow, actor=request.user, name=data["name"], expires_at=expires
        )
        body = dict(WorkflowTokenOutput(row).data)
        body["key"] = key
        return Response(body, status=201)


class TokenDetailApi(APIView):
    @extend_schema(
        operation_id="workflow_token_revoke",
        request=None,
        responses={204: None, 400: ERROR_RESPONSE, **NOT_FOUND_OR_FORBIDDEN},
        parameters=[OpenApiParameter("token_id", ID_SCHEMA, OpenApiParameter.PATH)],
        description="Revoke the token (idempotent) and deactivate its account.",
    )
    def delete(self, request: AuthenticatedRequest, slug: str, token_id: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        number = bounded_int(token_id, name="token_id", minimum=1, maximum=ID_MAX)
        workflow_token_revoke(workflow=workflow, actor=request.user, token_id=number)
        return Response(status=204)


class LabelExampleListApi(APIView):
    """Example images of the workflow's labels: read by its members, added by its admins."""

    parser_classes = [StrictMultiPartParser, FormParser]

    @extend_schema(
        operation_id="label_example_list",
        responses={200: LabelExampleOutput(many=True), 404: ERROR_RESPONSE},
        description="Every example image, by label in the workflow's label order.",
    )
    def get(self, request: Request, slug: str) -> Response:
        workflow = access_workflow(request.user, slug)
        examples = [info for group in label_examples(workflow=workflow).values() for info in group]
        context = {"slug": workflow.slug, "request": request}
        return Response(LabelExampleOutput(examples, many=True, context=context).data)

    @extend_schema(
        operation_id="label_example_add",
        request={"multipart/form-data": LabelExampleCreateInput},
        responses={
            201: LabelExampleOutput,
            400: OpenApiResponse(
                ERROR_RESPONSE,
                description="An unknown label, a caption that is too long, or an image that "
                "is corrupt, truncated, not an image or too many pixels (`field` names it).",
            ),
            **NOT_FOUND_OR_FORBIDDEN,
            409: OpenApiResponse(
                ERROR_RESPONSE,
                description="`example_exists`: the same image is already an example of the "
                "label; `too_many_examples`: the label has the most examples it may have.",
            ),
            413: ERROR_RESPONSE,
            415: ERROR_RESPONSE,
        },
        description="Add an example image of one label (workflow admins). Reviewers see it "
        "in the review screen's instructions.",
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        image_data = label_example_upload_read(request.FILES.get("image"))
        fields = request.data
        if not isinstance(fields, Mapping):
            raise InvalidInput("body: expected multipart form fields", field="body")
        unknown = sorted(set(fields) - {"label", "caption", "image"})
        if unknown:
            raise InvalidInput(f"unknown fields: {unknown}", field=unknown[0])
        if not fields.get("label"):
            raise InvalidInput("label: this field is required", field="label")
        example = label_example_add(
            workflow=workflow,
            actor=request.user,
            label=fields.get("label"),
            caption=fields.get("caption", ""),
            image_data=image_data,
        )
        info = next(
            item
            for item in label_examples(workflow=workflow)[example.label]
            if item.id == example.pk
        )
        context = {"slug": workflow.slug, "request": request}
        return Response(LabelExampleOutput(info, context=context).data, status=201)


class LabelExampleDetailApi(APIView):
    @extend_schema(
        operation_id="label_example_remove",
        request=None,
        responses={204: None, **NOT_FOUND_OR_FORBIDDEN},
        parameters=[OpenApiParameter("example_id", ID_SCHEMA, OpenApiParameter.PATH)],
        description="Remove an example image (workflow admins); its file goes with it.",
    )
    def delete(self, request: AuthenticatedRequest, slug: str, example_id: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_admin")
        example = access_label_example(request.user, workflow.slug, example_id)
        label_example_remove(workflow=workflow, actor=request.user, example_id=example.pk)
        return Response(status=204)


class LabelExampleImageApi(APIView):
    """The example's image, for the workflow's members, from this origin (the pages'
    Content Security Policy allows images from 'self' only)."""

    @extend_schema(
        operation_id="label_example_image",
        parameters=[OpenApiParameter("example_id", ID_SCHEMA, OpenApiParameter.PATH)],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="The image."),
            404: ERROR_RESPONSE,
        },
    )
    def get(self, request: Request, slug: str, example_id: str) -> FileResponse:
        example = access_label_example(request.user, slug, example_id)
        content_type = IMAGE_CONTENT_TYPES.get(example.image_format, "application/octet-stream")
        response = FileResponse(example.image.open("rb"), content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response
