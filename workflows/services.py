"""Writes for workflows and cases: creation, the status state machine, processing."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from automation.routing import ModelOpinion, Policy, RoutingDecision, model_runs, route
from inference.loader import ModelLoadError
from loopgate.errors import Conflict, InvalidInput
from modelops.models import ModelVersion
from modelops.runtime import predict_images
from modelops.selectors import DeploymentPlan, deployment_plan, unit_draw
from workflows.images import image_validate
from workflows.models import (
    ActorType,
    Case,
    CaseEvent,
    CaseStatus,
    DecisionSource,
    Prediction,
    Workflow,
)

logger = logging.getLogger(__name__)

# The case state machine: a table of allowed moves, changed only by case_transition.
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    CaseStatus.RECEIVED: frozenset(
        {CaseStatus.PROCESSING, CaseStatus.IN_REVIEW, CaseStatus.FAILED}
    ),
    CaseStatus.PROCESSING: frozenset(
        {CaseStatus.RECEIVED, CaseStatus.IN_REVIEW, CaseStatus.DECIDED, CaseStatus.FAILED}
    ),
    CaseStatus.IN_REVIEW: frozenset({CaseStatus.DECIDED}),
    # A verdict undone within its window puts a human-decided case back in review.
    CaseStatus.DECIDED: frozenset({CaseStatus.IN_REVIEW}),
    CaseStatus.FAILED: frozenset({CaseStatus.RECEIVED}),
}

MAX_PROCESSING_ATTEMPTS = 3


class InvalidTransition(Conflict):
    code = "invalid_transition"


def policy_of(workflow: Workflow) -> Policy:
    return Policy(
        level=workflow.level,
        confidence_threshold=workflow.confidence_threshold,
        audit_rate=workflow.audit_rate,
        class_thresholds=workflow.class_thresholds or {},
    )


def case_event_record(
    *,
    case: Case,
    kind: str,
    actor_type: str,
    actor: Any = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    from_status: str = "",
    to_status: str = "",
) -> CaseEvent:
    return CaseEvent.objects.create(
        case=case,
        kind=kind,
        actor_type=actor_type,
        actor=actor,
        reason=reason,
        data=data or {},
        from_status=from_status,
        to_status=to_status,
    )


def case_transition(
    *,
    case: Case,
    to_status: str,
    actor_type: str,
    actor: Any = None,
    reason: str,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Move ``case`` to ``to_status`` and record why. Raises InvalidTransition.

    Call inside a transaction, holding the case's row lock (``select_for_update``);
    the caller saves the other fields it changed along with the status.
    """
    from_status = case.status
    if to_status not in CASE_TRANSITIONS[from_status]:
        raise InvalidTransition(f"case {case.id} cannot go from {from_status} to {to_status}")
    case.status = to_status
    case.save(update_fields=["status", "updated_at"])
    return case_event_record(
        case=case,
        kind="status",
        actor_type=actor_type,
        actor=actor,
        reason=reason,
        data=data,
        from_status=from_status,
        to_status=to_status,
    )


def metadata_parse(raw: Any) -> dict[str, Any]:
    """``metadata`` as sent (a JSON text in a multipart form, or an object): a JSON object."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, (bytes, str)):
        if len(raw) > settings.LOOPGATE_MAX_METADATA_BYTES:
            raise InvalidInput(
                f"metadata: over the limit of {settings.LOOPGATE_MAX_METADATA_BYTES} bytes",
                field="metadata",
            )
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"metadata: not valid JSON ({exc})", field="metadata") from exc
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"metadata: must be a JSON object, not {type(raw).__name__}", field="metadata"
        )
    if len(json.dumps(raw)) > settings.LOOPGATE_MAX_METADATA_BYTES:
        raise InvalidInput(
            f"metadata: over the limit of {settings.LOOPGATE_MAX_METADATA_BYTES} bytes",
            field="metadata",
        )
    return raw


@dataclass(frozen=True)
class CaseCreateResult:
    case: Case
    created: bool


def case_create(
    *,
    workflow: Workflow,
    image_data: bytes,
    external_id: str | None,
    metadata: dict[str, Any],
    submitted_by: Any,
) -> CaseCreateResult:
    """Store a case and queue its processing once the transaction commits.

    The same ``external_id`` twice in a workflow returns the existing case
    (``created=False``), also when two requests race: the database's unique constraint
    decides, and the loser's stored file is removed so nothing is left half-stored.
    """
    if external_id is not None:
        external_id = external_id.strip()
        if not external_id:
            raise InvalidInput("external_id: must not be blank", field="external_id")
        if len(external_id) > 255:
            raise InvalidInput("external_id: at most 255 characters", field="external_id")
        existing = Case.objects.filter(workflow=workflow, external_id=external_id).first()
        if existing is not None:
            return CaseCreateResult(case=existing, created=False)

    info = image_validate(
        data=image_data,
        allowed_formats=settings.LOOPGATE_ALLOWED_IMAGE_FORMATS,
        max_bytes=settings.LOOPGATE_MAX_UPLOAD_BYTES,
        max_pixels=settings.LOOPGATE_MAX_IMAGE_PIXELS,
    )
    case = Case(
        id=uuid.uuid4(),
        workflow=workflow,
        external_id=external_id,
        metadata=metadata,
        image_format=info.format,
        image_width=info.width,
        image_height=info.height,
        image_bytes=info.byte_size,
        image_sha256=info.sha256,
        submitted_by=submitted_by if getattr(submitted_by, "pk", None) else None,
    )
    try:
        with transaction.atomic():
            case.image.save(f"{case.id}.{info.extension}", ContentFile(image_data), save=False)
            case.save(force_insert=True)
            case_event_record(
                case=case,
                kind="received",
                actor_type=ActorType.USER,
                actor=case.submitted_by,
                reason="submitted through the API",
                to_status=CaseStatus.RECEIVED,
                data={"image_sha256": info.sha256, "format": info.format},
            )
            if not model_runs(workflow.level):
                case_route(case=case, policy=policy_of(workflow), plan=None, opinion=None)
            else:
                case_queue_processing(case_id=case.id)
    except IntegrityError:
        if case.image.name:
            case.image.storage.delete(case.image.name)
        existing = Case.objects.filter(workflow=workflow, external_id=external_id).first()
        if external_id is None or existing is None:
            raise
        return CaseCreateResult(case=existing, created=False)
    except BaseException:
        if case.image.name:
            case.image.storage.delete(case.image.name)
        raise
    return CaseCreateResult(case=case, created=True)


def case_queue_processing(*, case_id: uuid.UUID) -> None:
    """Queue the inference task when the surrounding transaction commits."""
    from workflows.tasks import case_process

    transaction.on_commit(lambda: case_process.delay(str(case_id)))


def case_audit_draw(case_id: uuid.UUID | str) -> float:
    return unit_draw(f"audit:{case_id}")


def case_route(
    *,
    case: Case,
    policy: Policy,
    plan: DeploymentPlan | None,
    opinion: ModelOpinion | None,
    deciding_prediction: Prediction | None = None,
    error: str = "",
) -> RoutingDecision:
    """Apply the routing function's answer to ``case``: decide it, or open a review task.

    Call inside a transaction holding the case's row lock, with the case in
    ``received`` (human only) or ``processing``.
    """
    from review.models import TaskKind
    from review.services import review_task_open

    decision = route(policy=policy, opinion=opinion, audit_draw=case_audit_draw(case.id))
    now = timezone.now()
    case.routed_level = policy.level.value
    case.routed_threshold = decision.threshold
    case.review_reason = decision.reason.value if decision.reason else ""
    case.suggestion_visible = decision.show_suggestion
    case.deciding_prediction = deciding_prediction
    if error:
        case.failure_reason = error
    data = {
        "level": policy.level.value,
        "threshold": decision.threshold,
        "reason": case.review_reason or None,
        "suggestion_visible": decision.show_suggestion,
        "audit": decision.is_audit,
    }
    if deciding_prediction is not None:
        data["model_version"] = deciding_prediction.model_version.tag
        data["role"] = deciding_prediction.role
        data["label"] = deciding_prediction.label
        data["confidence"] = deciding_prediction.confidence
    if error:
        data["error"] = error

    if decision.decide_by_model:
        assert deciding_prediction is not None, "a model decision needs its prediction"
        case.decision_label = deciding_prediction.label
        case.decision_source = DecisionSource.MODEL
        case.decision_confidence = deciding_prediction.confidence
        case.decision_model_version = deciding_prediction.model_version
        case.decided_at = now
        case.save()
        reason = "model decided at or above the threshold"
        if decision.is_audit:
            reason += "; drawn for the audit sample, sent blind to a human"
        case_transition(
            case=case,
            to_status=CaseStatus.DECIDED,
            actor_type=ActorType.MODEL,
            reason=reason,
            data=data,
        )
        if decision.send_to_review:
            review_task_open(
                case=case, kind=TaskKind.AUDIT, reason=decision.reason, show_suggestion=False
            )
    else:
        case.save()
        case_transition(
            case=case,
            to_status=CaseStatus.IN_REVIEW,
            actor_type=ActorType.SYSTEM,
            reason=_review_reason_text(decision, error),
            data=data,
        )
        review_task_open(
            case=case,
            kind=TaskKind.REVIEW,
            reason=decision.reason,
            show_suggestion=decision.show_suggestion,
        )
    return decision


def _review_reason_text(decision: RoutingDecision, error: str) -> str:
    texts = {
        "human_only": "human only: every case is reviewed, the model is not run",
        "shadow": "shadow mode: the model's prediction is recorded but hidden from reviewers",
        "assistance": "assistance: reviewed with the model's suggestion shown",
        "low_confidence": "confidence below the threshold",
        "class_rule": "a per-class rule sends this label to review",
        "model_error": f"the model could not score this case: {error}",
    }
    return texts.get(decision.reason.value if decision.reason else "", "sent to review")


# --- Processing ------------------------------------------------------------------------


def _case_claim(*, case_id: uuid.UUID | str, stalled_after: timedelta) -> Case | None:
    """Lock the case and mark it processing, or None when there is nothing to do.

    A case in ``processing`` is taken again only once it has stalled (its worker died or
    its message was lost): a duplicate delivery of a live case is a no-op.
    """
    with transaction.atomic():
        case = (
            Case.objects.select_for_update().select_related("workflow").filter(id=case_id).first()
        )
        if case is None:
            return None
        now = timezone.now()
        if case.status == CaseStatus.PROCESSING:
            started = case.processing_started_at
            if started is not None and now - started < stalled_after:
                return None
        elif case.status != CaseStatus.RECEIVED:
            return None
        case.processing_attempts += 1
        case.processing_started_at = now
        case.save(update_fields=["processing_attempts", "processing_started_at", "updated_at"])
        if case.status == CaseStatus.RECEIVED:
            case_transition(
                case=case,
                to_status=CaseStatus.PROCESSING,
                actor_type=ActorType.SYSTEM,
                reason="inference started",
                data={"attempt": case.processing_attempts},
            )
        else:
            case_event_record(
                case=case,
                kind="retry",
                actor_type=ActorType.SYSTEM,
                reason="processing stalled; taken up again",
                data={"attempt": case.processing_attempts},
            )
        return case


def plan_record(plan: DeploymentPlan) -> dict[str, Any]:
    return {
        "deciding": plan.deciding.pk if plan.deciding else None,
        "role": plan.deciding_role,
        "shadows": [version.pk for version in plan.shadows],
    }


def plan_from_record(record: dict[str, Any]) -> DeploymentPlan:
    ids = [record["deciding"], *record.get("shadows", [])]
    versions = ModelVersion.objects.in_bulk([i for i in ids if i is not None])
    return DeploymentPlan(
        deciding=versions.get(record["deciding"]) if record["deciding"] else None,
        deciding_role=record.get("role", ""),
        shadows=tuple(versions[i] for i in record.get("shadows", []) if i in versions),
    )


def _case_plan(case: Case) -> DeploymentPlan:
    """The versions that run on ``case``, fixed the first time it is processed.

    A retried case (a dead worker, a redelivery) finishes on the versions that started
    it, even after a promotion or rollback in between: the first plan is stored, and
    the conditional update lets only one of two racing workers store theirs.
    """
    if not case.planned_versions:
        plan = deployment_plan(workflow_id=case.workflow_id, case_id=str(case.id))
        stored = Case.objects.filter(id=case.id, planned_versions={}).update(
            planned_versions=plan_record(plan)
        )
        if stored:
            case.planned_versions = plan_record(plan)
            return plan
        case.planned_versions = (
            Case.objects.filter(id=case.id).values_list("planned_versions", flat=True).get()
        )
    return plan_from_record(case.planned_versions)


def _open_image(case: Case) -> Image.Image:
    with case.image.open("rb") as handle:
        image = Image.open(handle, formats=list(settings.LOOPGATE_ALLOWED_IMAGE_FORMATS))
        image.load()
    return image.convert("RGB")


@dataclass
class _CaseRun:
    case: Case
    plan: DeploymentPlan | None = None
    image: Image.Image | None = None
    error: str = ""
    predictions: dict[int, Prediction] | None = None


def _predict_missing(runs: list[_CaseRun]) -> None:
    """Score every (case, version) pair that has no prediction yet, one batch per version.

    Predictions are created with the (case, model version) unique constraint as the
    arbiter, so a second delivery reuses the first one's rows.
    """
    by_version: dict[int, tuple[ModelVersion, str, list[_CaseRun]]] = {}
    for run in runs:
        if run.plan is None or run.error:
            continue
        existing = {
            p.model_version_id: p for p in run.case.predictions.select_related("model_version")
        }
        run.predictions = existing
        for version, role in run.plan.all_versions():
            if version.pk in existing:
                continue
            by_version.setdefault(version.pk, (version, role, []))[2].append(run)
    for version, role, version_runs in by_version.values():
        todo = [r for r in version_runs if r.image is not None]
        if not todo:
            continue
        started = time.perf_counter()
        try:
            results = predict_images(version, [r.image for r in todo])
        except ModelLoadError as exc:
            _record_failure(todo, version, role, f"model {version.tag} could not be loaded: {exc}")
            continue
        except Exception as exc:
            logger.exception("model %s failed on a batch of %d", version.tag, len(todo))
            _record_failure(todo, version, role, f"model {version.tag} failed: {exc}")
            continue
        latency_ms = (time.perf_counter() - started) * 1000 / len(todo)
        for run, result in zip(todo, results, strict=True):
            try:
                with transaction.atomic():
                    prediction = Prediction.objects.create(
                        case=run.case,
                        model_version=version,
                        role=role,
                        scores=result.scores_dict(),
                        label=result.label,
                        confidence=result.confidence,
                        latency_ms=latency_ms,
                    )
            except IntegrityError:
                prediction = Prediction.objects.get(case=run.case, model_version=version)
            assert run.predictions is not None
            run.predictions[version.pk] = prediction


def _record_failure(runs: list[_CaseRun], version: ModelVersion, role: str, message: str) -> None:
    for run in runs:
        if (
            run.plan is not None
            and run.plan.deciding is not None
            and run.plan.deciding.pk == version.pk
        ):
            run.error = message
        else:
            case_event_record(
                case=run.case,
                kind="shadow_error",
                actor_type=ActorType.SYSTEM,
                reason=message,
                data={"model_version": version.tag, "role": role},
            )


def cases_process(*, case_ids: list[str]) -> int:
    """Run the models on these cases and route them. Returns how many were routed.

    Idempotent: a case already routed is left alone, predictions are unique per
    (case, version), and the route is applied under the row lock only while the case is
    still ``processing`` — so no case is decided twice, whatever the redeliveries.
    """
    stalled_after = timedelta(seconds=settings.LOOPGATE_STALLED_AFTER_SECONDS)
    runs: list[_CaseRun] = []
    for case_id in case_ids:
        case = _case_claim(case_id=case_id, stalled_after=stalled_after)
        if case is not None:
            runs.append(_CaseRun(case=case))
    for run in runs:
        case = run.case
        if case.processing_attempts > MAX_PROCESSING_ATTEMPTS:
            run.error = f"gave up after {MAX_PROCESSING_ATTEMPTS} processing attempts"
            continue
        if not model_runs(case.workflow.level):
            continue
        run.plan = _case_plan(case)
        if run.plan.deciding is None:
            run.error = "no serving model is deployed for this workflow"
            continue
        try:
            run.image = _open_image(case)
        except Exception as exc:  # noqa: BLE001 - a lost or unreadable file goes to humans
            run.error = f"the stored image could not be read: {exc}"
    _predict_missing(runs)
    routed = 0
    for run in runs:
        if _case_finish(run):
            routed += 1
    return routed


def _case_finish(run: _CaseRun) -> bool:
    with transaction.atomic():
        case = Case.objects.select_for_update().select_related("workflow").get(id=run.case.id)
        if case.status != CaseStatus.PROCESSING:
            return False
        workflow = case.workflow
        policy = policy_of(workflow)
        deciding_prediction = None
        opinion = None
        if run.plan is not None and run.plan.deciding is not None and run.predictions:
            deciding_prediction = run.predictions.get(run.plan.deciding.pk)
        if deciding_prediction is not None:
            opinion = ModelOpinion(
                label=deciding_prediction.label, confidence=deciding_prediction.confidence
            )
        error = run.error
        if model_runs(policy.level) and opinion is None and not error:
            error = "the model was not run on this case"
        case_route(
            case=case,
            policy=policy,
            plan=run.plan,
            opinion=opinion,
            deciding_prediction=deciding_prediction,
            error=error,
        )
        return True


def cases_stalled(*, older_than: timedelta, limit: int = 500) -> list[str]:
    cutoff = timezone.now() - older_than
    received = Case.objects.filter(status=CaseStatus.RECEIVED, created_at__lt=cutoff)
    processing = Case.objects.filter(status=CaseStatus.PROCESSING, processing_started_at__lt=cutoff)
    ids = list(received.values_list("id", flat=True)[:limit])
    ids += list(processing.values_list("id", flat=True)[: max(0, limit - len(ids))])
    return [str(i) for i in ids]


def case_batch_companions(*, case_id: str, limit: int) -> list[str]:
    """Other waiting cases of the same workflow to score in the same batch as ``case_id``."""
    if limit <= 0:
        return []
    workflow_id = Case.objects.filter(id=case_id).values_list("workflow_id", flat=True).first()
    if workflow_id is None:
        return []
    ids = (
        Case.objects.filter(workflow_id=workflow_id, status=CaseStatus.RECEIVED)
        .exclude(id=case_id)
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
    return [str(i) for i in ids]
