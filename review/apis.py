"""REST endpoints of the review queue: validate, call one service, render.

The task id in the URLs is the ReviewTask id returned by ``review/next``; the lease
behind it belongs to the caller, and every write checks that again.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import AuthenticatedRequest
from kernel.apischema import ERROR_RESPONSE
from kernel.bounds import bounded_int, integer_schema
from kernel.parsers import StrictJSONParser
from review import selectors, services
from review.serializers import (
    ChangeDecisionInput,
    ChangeDecisionOutput,
    ChangeRequestInput,
    ChangeRequestOutput,
    LeaseOutput,
    QueueCountsOutput,
    ReviewNextInput,
    ReviewStatsOutput,
    ReviewTaskOutput,
    SkipInput,
    UndoOutput,
    VerdictInput,
    VerdictOutput,
)
from workflows.access import access_workflow

MAX_RECENT_VERDICTS = 100


def _valid(serializer_class: type, data: object) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ReviewNextApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="review_next",
        request=ReviewNextInput,
        responses={
            200: ReviewTaskOutput,
            204: OpenApiResponse(description="The queue is empty."),
            403: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        description=(
            "Claim the next case: a lease that expires at `expires_at`. A reviewer who "
            "already holds a live lease gets it back. `suggestion` is present only when "
            "the level allows it."
        ),
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_review")
        data = _valid(ReviewNextInput, request.data or {})
        assignment = services.review_next(
            workflow=workflow, reviewer=request.user, after_task_id=data.get("after")
        )
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        payload = selectors.review_task_payload(assignment=assignment)
        return Response(ReviewTaskOutput(payload).data)


class VerdictSubmitApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="review_verdict",
        request=VerdictInput,
        responses={
            201: VerdictOutput,
            400: OpenApiResponse(ERROR_RESPONSE, description="Unknown label (names the allowed)."),
            404: ERROR_RESPONSE,
            409: OpenApiResponse(ERROR_RESPONSE, description="Not yours, or already decided."),
            410: OpenApiResponse(ERROR_RESPONSE, description="Your lease expired."),
        },
    )
    def post(self, request: AuthenticatedRequest, task_id: int) -> Response:
        data = _valid(VerdictInput, request.data)
        verdict = services.verdict_submit(
            task_id=task_id, reviewer=request.user, label=data["label"], comment=data["comment"]
        )
        return Response(
            VerdictOutput(selectors.verdict_view(verdict=verdict)).data,
            status=status.HTTP_201_CREATED,
        )


class LeaseHeartbeatApi(APIView):
    @extend_schema(
        operation_id="review_heartbeat",
        request=None,
        responses={
            200: LeaseOutput,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
            410: OpenApiResponse(ERROR_RESPONSE, description="Your lease ran out."),
        },
        description=(
            "Renew your lease while the case is on your screen and you are working on it: "
            "a full lease from now, never past `limit_at`. Call it only while active."
        ),
    )
    def post(self, request: AuthenticatedRequest, task_id: int) -> Response:
        assignment = services.assignment_heartbeat(task_id=task_id, reviewer=request.user)
        return Response(LeaseOutput(selectors.lease_view(assignment=assignment)).data)


class ReviewQueueApi(APIView):
    @extend_schema(
        operation_id="review_queue",
        responses={200: QueueCountsOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description="The queue's counts as the queue page shows them, for you.",
    )
    def get(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_review")
        counts = selectors.queue_counts(workflows=[workflow], user=request.user)
        return Response(QueueCountsOutput(counts[workflow.pk]).data)


class VerdictSkipApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="review_skip",
        request=SkipInput,
        responses={
            204: OpenApiResponse(description="Skipped; the case stays in the queue for others."),
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
            410: ERROR_RESPONSE,
        },
    )
    def post(self, request: AuthenticatedRequest, task_id: int) -> Response:
        data = _valid(SkipInput, request.data)
        services.verdict_skip(task_id=task_id, reviewer=request.user, reason=data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class AssignmentReleaseApi(APIView):
    @extend_schema(
        operation_id="review_release",
        request=None,
        responses={
            204: OpenApiResponse(description="Released (or there was no live lease)."),
            404: ERROR_RESPONSE,
        },
        description="Give back a lease without a verdict: a prefetched case, a closed page.",
    )
    def post(self, request: AuthenticatedRequest, task_id: int) -> Response:
        services.assignment_release(task_id=task_id, reviewer=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VerdictUndoApi(APIView):
    @extend_schema(
        operation_id="review_undo",
        request=None,
        responses={
            200: UndoOutput,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(ERROR_RESPONSE, description="Not your last verdict, or moved on."),
            410: OpenApiResponse(ERROR_RESPONSE, description="The undo window has passed."),
        },
    )
    def post(self, request: AuthenticatedRequest, verdict_id: int) -> Response:
        result = services.verdict_undo(reviewer=request.user, verdict_id=verdict_id)
        task = (
            selectors.review_task_payload(assignment=result.assignment)
            if result.assignment is not None
            else None
        )
        body = {"verdict": selectors.verdict_view(verdict=result.verdict), "task": task}
        return Response(UndoOutput(body).data)


class VerdictChangeRequestApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="review_change_request",
        request=ChangeRequestInput,
        responses={
            201: ChangeRequestOutput,
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            409: OpenApiResponse(ERROR_RESPONSE, description="Undone, or already requested."),
        },
        description=(
            "Ask the workflow's admins to change one of your verdicts (past the undo "
            "window): recorded on the case's event trail, listed in review/stats."
        ),
    )
    def post(self, request: AuthenticatedRequest, verdict_id: int) -> Response:
        data = _valid(ChangeRequestInput, request.data)
        event = services.verdict_change_request(
            reviewer=request.user, verdict_id=verdict_id, label=data["label"], reason=data["reason"]
        )
        body = {
            "case": event.case_id,
            "verdict": verdict_id,
            "reviewer": request.user.get_username(),
            "from_label": event.data["from_label"],
            "to_label": event.data["to_label"],
            "reason": event.reason,
            "created_at": event.created_at,
        }
        return Response(ChangeRequestOutput(body).data, status=status.HTTP_201_CREATED)


class VerdictChangeDecideApi(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="review_change_decide",
        request=ChangeDecisionInput,
        responses={
            200: ChangeDecisionOutput,
            400: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            404: OpenApiResponse(ERROR_RESPONSE, description="No such verdict, or no request."),
            409: OpenApiResponse(
                ERROR_RESPONSE,
                description="Already decided, or the verdict or case moved on since.",
            ),
        },
        description=(
            "A workflow admin accepts or declines a reviewer's request to change a verdict. "
            "Accepting relabels the verdict and re-decides the case by the consensus rule; "
            "both are recorded on the case's event trail."
        ),
    )
    def post(self, request: AuthenticatedRequest, verdict_id: int) -> Response:
        data = _valid(ChangeDecisionInput, request.data)
        event = services.verdict_change_decide(
            admin=request.user,
            verdict_id=verdict_id,
            decision=data["decision"],
            reason=data["reason"],
        )
        return Response(ChangeDecisionOutput(selectors.change_decision_view(event=event)).data)


class VerdictsRecentApi(APIView):
    @extend_schema(
        operation_id="review_verdicts_recent",
        parameters=[
            OpenApiParameter(
                "limit",
                integer_schema(1, MAX_RECENT_VERDICTS),
                description=f"1 to {MAX_RECENT_VERDICTS}; default 20.",
            )
        ],
        responses={200: VerdictOutput(many=True), 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description="Your own latest verdicts in the workflow, newest first.",
    )
    def get(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_review")
        raw_limit = request.query_params.get("limit") or selectors.RECENT_VERDICTS_LIMIT
        limit = bounded_int(raw_limit, name="limit", minimum=1, maximum=MAX_RECENT_VERDICTS)
        verdicts = selectors.verdicts_recent(workflow=workflow, reviewer=request.user, limit=limit)
        return Response(VerdictOutput(verdicts, many=True).data)


class ReviewStatsApi(APIView):
    @extend_schema(
        operation_id="review_stats",
        responses={200: ReviewStatsOutput, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        description=(
            "Queue, throughput, agreement (percent, Cohen's and Fleiss' kappa) and gold "
            "accuracy. Admins see every reviewer; a reviewer sees their own rows."
        ),
    )
    def get(self, request: AuthenticatedRequest, slug: str) -> Response:
        workflow = access_workflow(request.user, slug, "can_review")
        return Response(
            ReviewStatsOutput(selectors.review_stats(workflow=workflow, viewer=request.user)).data
        )
