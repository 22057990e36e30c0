"""The case pipeline: ingest, scoring by the deployed model versions, and routing.

``case_create`` stores a case (``workflows.services.case_store``) and, in the same
transaction, routes it (human only) or queues its processing. ``cases_process`` scores a
batch and routes it; ``case_route`` applies the pure routing decision
(``decisions.routing.route``): decide by model, or open a review task. A case whose
stored image cannot be read is ``failed`` instead (neither a model nor a reviewer could
judge it), and ``case_retry`` puts a failed case back in the queue.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from accounts.types import User
from decisions.routing import Level, ModelOpinion, Policy, RoutingDecision, model_runs, route
from inference.loader import ModelLoadError
from inference.measure import ImageMeasurements, image_measurements
from kernel.bulkupdate import objects_update
from kernel.errors import Conflict
from modelops.models import ModelVersion
from modelops.runtime import predict_images_with_embeddings
from modelops.selectors import DeploymentPlan, deployment_plans, unit_draw
from workflows.models import (
    ActorType,
    Case,
    CaseEvent,
    CaseStatus,
    DecisionSource,
    PeriodicRun,
    Prediction,
    WorkerHeartbeat,
    Workflow,
)
from workflows.services import (
    CaseCreateResult,
    CaseMove,
    case_event_record,
    case_store,
    case_transition,
    cases_move,
    cases_transition,
)

logger = logging.getLogger(__name__)

MAX_PROCESSING_ATTEMPTS = 3


def policy_of(workflow: Workflow) -> Policy:
    return Policy(
        level=Level(workflow.level),
        confidence_threshold=workflow.confidence_threshold,
        audit_rate=workflow.audit_rate,
        class_thresholds=workflow.class_thresholds or {},
    )


def case_create(
    *,
    workflow: Workflow,
    image_data: bytes,
    external_id: str | None,
    metadata: dict[str, Any],
    submitted_by: User | None,
    deadline_at: datetime | None = None,
) -> CaseCreateResult:
    """Store a case and, in the same transaction, route it or queue its processing.

    Idempotent per ``external_id`` within the workflow (``workflows.services.case_store``).
    In ``human_only`` the model does not run, so the case goes to review at once;
    otherwise its processing message is published when the transaction commits.
    """

    def next_step(case: Case) -> None:
        if not model_runs(workflow.level):
            case_route(case=case, policy=policy_of(workflow), plan=None, opinion=None)
        else:
            case_queue_processing(case_id=case.id, workflow_id=workflow.id)

    return case_store(
        workflow=workflow,
        image_data=image_data,
        external_id=external_id,
        metadata=metadata,
        submitted_by=submitted_by,
        deadline_at=deadline_at,
        on_stored=next_step,
    )


class CaseNotFailed(Conflict):
    code = "not_failed"


def case_retry(*, case: Case, actor: Any) -> Case:
    """Put a ``failed`` case back in the queue (``failed -> received``) and queue it.

    For a workflow admin, once the stored image is back or readable again. The previous
    failure reason is kept in the event; the attempts count starts again. Refused (409)
    when the case is not failed.
    """
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",)).get(pk=case.pk)
        if case.status != CaseStatus.FAILED:
            raise CaseNotFailed(f"case {case.id} is {case.status}, not failed: nothing to retry")
        previous = case.failure_reason
        case.failure_reason = ""
        case.processing_attempts = 0
        case.processing_started_at = None
        case.claimed_by = ""
        case.requeued_at = None
        case_transition(
            case=case,
            to_status=CaseStatus.RECEIVED,
            actor_type=ActorType.USER,
            actor=actor,
            reason=f"retried by {actor.get_username()}",
            data={"failure_reason": previous},
            fields=(
                "failure_reason",
                "processing_attempts",
                "processing_started_at",
                "claimed_by",
                "requeued_at",
            ),
        )
        case_queue_processing(case_id=case.id, workflow_id=case.workflow_id)
    return case


def case_queue_processing(*, case_id: uuid.UUID, workflow_id: int) -> None:
    """Wake the workflow's drain when the surrounding transaction commits.

    The case is committed by then, so a broker that does not take the message must not
    fail the request: the case is marked ``publish_pending`` and the sweeper
    (``cases_publish_pending``, every few seconds) wakes its workflow once the broker is
    back.
    """
    transaction.on_commit(lambda: workflow_wake(workflow_id=workflow_id, case_ids=[case_id]))


def workflow_wake(
    *, workflow_id: int, case_ids: list[uuid.UUID] | list[str] | None = None, force: bool = False
) -> bool:
    """Make sure a drain of this workflow will look at its waiting cases; True when one will.

    Coalesced (``processing.wakeups``): a drain message is published only when no drain
    of the workflow is queued and not yet started, so a burst of cases costs one message.
    ``force`` publishes whatever the flag says (the sweepers: a flag may outlive a lost
    message). Call after the cases are committed. Never raises: when the broker does not
    take the message, ``case_ids`` are marked ``publish_pending`` (with an event), and if
    even that write fails, the stall sweeper still finds them ``received``.
    """
    from processing.tasks import workflow_drain
    from processing.wakeups import wake_flags

    flags = None
    try:
        flags = wake_flags()
        if force:
            flags.set(workflow_id)
        elif not flags.set_if_absent(workflow_id):
            return True
    except Exception as exc:  # noqa: BLE001 - the flag store is the broker's: publish anyway
        logger.warning(
            "workflow %s: wake-up flag not set (%s: %s); publishing",
            workflow_id,
            type(exc).__name__,
            exc,
        )
    try:
        workflow_drain.delay(workflow_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure; the cases are safe
        logger.warning(
            "workflow %s: processing message not published (%s: %s); the sweeper will retry",
            workflow_id,
            type(exc).__name__,
            exc,
        )
        if flags is not None:
            try:
                flags.clear(workflow_id)
            except Exception:  # noqa: BLE001 - it expires on its own
                logger.warning("workflow %s: wake-up flag not cleared", workflow_id)
        if case_ids:
            _cases_mark_publish_pending(case_ids=list(case_ids), exc=exc)
        return False
    return True


def _cases_mark_publish_pending(*, case_ids: list[Any], exc: Exception) -> None:
    try:
        with transaction.atomic():
            marked = list(
                Case.objects.filter(
                    id__in=case_ids, status=CaseStatus.RECEIVED, publish_pending=False
                ).values_list("id", flat=True)
            )
            Case.objects.filter(id__in=marked, status=CaseStatus.RECEIVED).update(
                publish_pending=True
            )
            CaseEvent.objects.bulk_create(
                CaseEvent(
                    case_id=case_id,
                    kind="publish_failed",
                    actor_type=ActorType.SYSTEM,
                    reason="the broker did not take the processing message; retried by the sweeper",
                    data={"error": f"{type(exc).__name__}: {exc}"[:500]},
                )
                for case_id in marked
            )
    except Exception:
        logger.warning("cases %s: could not mark publish_pending", case_ids, exc_info=True)


def case_audit_draw(case_id: uuid.UUID | str) -> float:
    return unit_draw(f"audit:{case_id}")


# The fields case_route sets, saved with the status change.
_ROUTE_FIELDS = (
    "routed_level",
    "routed_threshold",
    "review_reason",
    "suggestion_visible",
    "deciding_prediction",
    "failure_reason",
)
_DECISION_FIELDS = (
    "decision_label",
    "decision_source",
    "decision_confidence",
    "decision_model_version",
    "decided_at",
)


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
    route = _route_plan(
        case=case,
        policy=policy,
        opinion=opinion,
        deciding_prediction=deciding_prediction,
        error=error,
    )
    _routes_apply([route])
    return route.decision


@dataclass
class _Route:
    """One case's routing, worked out in memory and written with its batch."""

    decision: RoutingDecision
    move: CaseMove
    task: Any  # review.services.TaskOpening | None


def _route_plan(
    *,
    case: Case,
    policy: Policy,
    opinion: ModelOpinion | None,
    deciding_prediction: Prediction | None,
    error: str,
) -> _Route:
    """The routing function's answer for ``case``, set on the case object (not saved)."""
    from review.models import TaskKind
    from review.services import TaskOpening

    decision = route(policy=policy, opinion=opinion, audit_draw=case_audit_draw(case.id))
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
        case.decided_at = timezone.now()
        reason = "model decided at or above the threshold"
        if decision.is_audit:
            reason += "; drawn for the audit sample, sent blind to a human"
        move = CaseMove(
            case=case,
            to_status=CaseStatus.DECIDED,
            actor_type=ActorType.MODEL,
            reason=reason,
            data=data,
            fields=_ROUTE_FIELDS + _DECISION_FIELDS,
        )
        task = None
        if decision.send_to_review:
            task = TaskOpening(
                case=case, kind=TaskKind.AUDIT, reason=decision.reason, show_suggestion=False
            )
        return _Route(decision=decision, move=move, task=task)
    move = CaseMove(
        case=case,
        to_status=CaseStatus.IN_REVIEW,
        actor_type=ActorType.SYSTEM,
        reason=_review_reason_text(decision, error),
        data=data,
        fields=_ROUTE_FIELDS,
    )
    task = TaskOpening(
        case=case,
        kind=TaskKind.REVIEW,
        reason=decision.reason,
        show_suggestion=decision.show_suggestion,
    )
    return _Route(decision=decision, move=move, task=task)


def _routes_apply(routes: list[_Route], *, failures: list[CaseMove] | None = None) -> None:
    """Write a batch's routing: one UPDATE of the cases, one INSERT of their events, one
    INSERT of review tasks. Call inside the transaction holding the cases' row locks."""
    from review.services import review_tasks_open

    cases_move(moves=[route.move for route in routes] + (failures or []))
    openings = [route.task for route in routes if route.task is not None]
    if openings:
        review_tasks_open(openings=openings)


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


@dataclass
class _Claim:
    """Cases a worker claimed, and the versions that run on each (``_plans_assign``)."""

    cases: list[Case]
    plans: dict[uuid.UUID, DeploymentPlan]

    def __len__(self) -> int:
        return len(self.cases)


def _cases_claim(
    *,
    stalled_after: timedelta,
    case_ids: list[str] | None = None,
    workflow_id: int | None = None,
    limit: int = 0,
) -> _Claim:
    """Lock these cases and mark them processing, leaving out those with nothing to do.

    Either the cases ``case_ids`` (the sweepers' retries), or the ``limit`` oldest
    ``received`` cases of ``workflow_id`` (a drain). A case in ``processing`` is taken
    again only once it has stalled (its worker died or its message was lost): a
    duplicate delivery of a live case is a no-op. A case that another worker holds
    locked at this moment is skipped (SKIP LOCKED on PostgreSQL; SQLite's IMMEDIATE
    transactions take one claimer at a time): it is that worker's. One short
    transaction for the whole batch: a SELECT, an UPDATE and an INSERT of events.
    """
    with transaction.atomic():
        now = timezone.now()
        query = Case.objects.select_for_update(skip_locked=True, of=("self",)).select_related(
            "workflow"
        )
        if case_ids is not None:
            locked = list(query.filter(id__in=case_ids).order_by("id"))
        else:
            assert workflow_id is not None, "claim given cases, or a workflow's waiting ones"
            locked = list(
                query.filter(workflow_id=workflow_id, status=CaseStatus.RECEIVED).order_by(
                    "created_at"
                )[:limit]
            )
        dead = _dead_claims(
            claims={case.claimed_by for case in locked if case.status == CaseStatus.PROCESSING},
            now=now,
        )
        claimed = [
            case
            for case in locked
            if case.status == CaseStatus.RECEIVED
            or (
                case.status == CaseStatus.PROCESSING
                and (
                    case.processing_started_at is None
                    or now - case.processing_started_at >= stalled_after
                    or case.claimed_by in dead
                )
            )
        ]
        if not claimed:
            return _Claim(cases=[], plans={})
        if case_ids is not None:
            order = {str(case_id): index for index, case_id in enumerate(case_ids)}
            claimed.sort(key=lambda case: order.get(str(case.id), len(order)))
        me = worker_identity()
        if _claim_record_due():
            worker_heartbeat_record(claimed=True, now=now)
        previous_claims = {case.id: case.claimed_by for case in claimed}
        for case in claimed:
            # Under the row lock: the counts in memory are the rows' own.
            case.processing_attempts += 1
            case.processing_started_at = now
            case.claimed_by = me.name
            case.publish_pending = False
        plans = _plans_assign(claimed)
        claim_fields = (
            "processing_attempts",
            "processing_started_at",
            "claimed_by",
            "planned_versions",
        )
        fresh = [case for case in claimed if case.status == CaseStatus.RECEIVED]
        stalled = [case for case in claimed if case.status == CaseStatus.PROCESSING]
        # Fresh cases: the claim and the move to processing in one UPDATE.
        cases_move(
            moves=[
                CaseMove(
                    case=case,
                    to_status=CaseStatus.PROCESSING,
                    actor_type=ActorType.SYSTEM,
                    reason="inference started",
                    data={"attempt": case.processing_attempts},
                    fields=(*claim_fields, "publish_pending"),
                )
                for case in fresh
            ]
        )
        if stalled:
            for case in stalled:
                case.updated_at = now
            objects_update(stalled, [*claim_fields, "publish_pending", "updated_at"])
            CaseEvent.objects.bulk_create(
                CaseEvent(
                    case=case,
                    kind="retry",
                    actor_type=ActorType.SYSTEM,
                    reason=(
                        "its worker process is gone; taken up again"
                        if previous_claims[case.id] in dead
                        else "processing stalled; taken up again"
                    ),
                    data={
                        "attempt": case.processing_attempts,
                        "claimed_by": previous_claims[case.id],
                    },
                )
                for case in stalled
            )
        return _Claim(cases=claimed, plans=plans)


# --- Worker liveness -------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerIdentity:
    hostname: str
    pid: int
    name: str


_identity: WorkerIdentity | None = None
_identity_lock = threading.Lock()


def worker_identity() -> WorkerIdentity:
    """This process as a claimer of cases: ``hostname:pid:random`` (new after a fork)."""
    global _identity
    pid = os.getpid()
    with _identity_lock:
        if _identity is None or _identity.pid != pid:
            hostname = socket.gethostname()
            _identity = WorkerIdentity(
                hostname=hostname, pid=pid, name=f"{hostname}:{pid}:{uuid.uuid4().hex[:8]}"
            )
        return _identity


# A process notes its claims at most this often (D139): what reads them (the backlog's
# "last claim" age, the dead-claim check) counts in seconds, and a busy worker claims
# many batches a second, each note an UPDATE.
CLAIM_RECORD_INTERVAL_SECONDS = 1.0
_claim_recorded: dict[str, float] = {}


def _claim_record_due() -> bool:
    """True, and noted, when this process last noted a claim over the interval ago."""
    key = worker_identity().name
    now = time.monotonic()
    with _identity_lock:
        if now - _claim_recorded.get(key, -math.inf) < CLAIM_RECORD_INTERVAL_SECONDS:
            return False
        _claim_recorded[key] = now
        return True


def worker_heartbeat_record(*, claimed: bool = False, now: Any = None) -> None:
    """Record that this process is alive (and, with ``claimed``, that it took a batch)."""
    me = worker_identity()
    now = now or timezone.now()
    fields: dict[str, Any] = {"seen_at": now}
    if claimed:
        fields["last_claim_at"] = now
    if not WorkerHeartbeat.objects.filter(name=me.name).update(**fields):
        WorkerHeartbeat.objects.get_or_create(
            name=me.name, defaults={"hostname": me.hostname, "pid": me.pid, **fields}
        )


def _process_is_gone(pid: int) -> bool:
    """True when no process ``pid`` runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _dead_claims(*, claims: set[str], now: Any) -> set[str]:
    """The claims among ``claims`` whose worker process is known to be gone.

    Gone means: on this host, its pid no longer runs; on any host, its heartbeat is
    older than ``LOOPGATE_WORKER_LEASE_SECONDS`` (or it never wrote one). An empty claim
    (a case claimed before claims were recorded) is never judged: the stall time applies.
    """
    claims = {claim for claim in claims if claim}
    if not claims:
        return set()
    lease = timedelta(seconds=settings.LOOPGATE_WORKER_LEASE_SECONDS)
    fresh = set(
        WorkerHeartbeat.objects.filter(name__in=claims, seen_at__gte=now - lease).values_list(
            "name", flat=True
        )
    )
    me = worker_identity()
    dead = set()
    for claim in claims:
        if claim == me.name:
            continue
        hostname, _, rest = claim.partition(":")
        pid_text = rest.partition(":")[0]
        if claim not in fresh or (
            hostname == me.hostname and pid_text.isdigit() and _process_is_gone(int(pid_text))
        ):
            dead.add(claim)
    return dead


def periodic_run_record(*, name: str) -> None:
    """Note that the periodic task ``name`` ran now (one row per task, updated in place)."""
    PeriodicRun.objects.update_or_create(name=name, defaults={"last_run_at": timezone.now()})


def worker_heartbeats_prune(*, older_than: timedelta) -> int:
    """Forget worker processes not seen for ``older_than``."""
    deleted, _ = WorkerHeartbeat.objects.filter(seen_at__lt=timezone.now() - older_than).delete()
    return deleted


def plan_record(plan: DeploymentPlan) -> dict[str, Any]:
    return {
        "deciding": plan.deciding.pk if plan.deciding else None,
        "role": plan.deciding_role,
        "shadows": [version.pk for version in plan.shadows],
    }


def _record_version_ids(record: dict[str, Any]) -> list[int]:
    return [i for i in [record.get("deciding"), *record.get("shadows", [])] if i is not None]


def plan_from_record(
    record: dict[str, Any], versions: dict[int, ModelVersion] | None = None
) -> DeploymentPlan:
    """The plan a case stored; ``versions`` (by id) when the caller read them already."""
    if versions is None:
        versions = ModelVersion.objects.in_bulk(_record_version_ids(record))
    return DeploymentPlan(
        deciding=versions.get(record["deciding"]) if record["deciding"] else None,
        deciding_role=record.get("role", ""),
        shadows=tuple(versions[i] for i in record.get("shadows", []) if i in versions),
    )


def _plans_assign(cases: list[Case]) -> dict[uuid.UUID, DeploymentPlan]:
    """The versions that run on each claimed case, fixed the first time it is processed.

    Called in the claim, under the cases' row locks. A retried case (a dead worker, a
    redelivery) finishes on the versions that started it, even after a promotion or
    rollback in between: its stored plan is kept. A case without one gets its plan from
    one read of its workflow's deployments (so every case of the batch sees the same
    side of a promotion), set on the case object for the claim's UPDATE to store: no
    statement of its own, and no other worker can store another meanwhile, since the
    claim holds the cases' row locks.
    Cases past the attempt limit, or at a level where the model does not run, get none.
    """
    plans: dict[uuid.UUID, DeploymentPlan] = {}
    needed = [
        case
        for case in cases
        if case.processing_attempts <= MAX_PROCESSING_ATTEMPTS and model_runs(case.workflow.level)
    ]
    by_workflow: dict[int, list[Case]] = {}
    for case in needed:
        if not case.planned_versions:
            by_workflow.setdefault(case.workflow_id, []).append(case)
    for workflow_id, workflow_cases in by_workflow.items():
        fresh = deployment_plans(
            workflow_id=workflow_id, case_ids=[str(case.id) for case in workflow_cases]
        )
        for case in workflow_cases:
            plans[case.id] = fresh[str(case.id)]
            case.planned_versions = plan_record(plans[case.id])
    stored = [case for case in needed if case.id not in plans]
    if stored:
        versions = ModelVersion.objects.in_bulk(
            {i for case in stored for i in _record_version_ids(case.planned_versions)}
        )
        for case in stored:
            plans[case.id] = plan_from_record(case.planned_versions, versions)
    return plans


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
    # The stored image is missing or unreadable: the case fails instead of being routed.
    unreadable: bool = False
    predictions: dict[int, Prediction] | None = None
    # Monitoring: the image's measurements, each version's embedding, when it was scored.
    measured: ImageMeasurements | None = None
    embeddings: dict[int, list[float]] | None = None
    scored_at: Any = None


def _predict_missing(runs: list[_CaseRun]) -> None:
    """Score every (case, version) pair that has no prediction yet, one batch per version.

    Predictions are created with the (case, model version) unique constraint as the
    arbiter, so a second delivery reuses the first one's rows. Only cases on a second or
    later attempt can have predictions already: the read is for them alone (a case on its
    first attempt that has some after all, e.g. retried after failing, meets the
    constraint and keeps the rows it has).
    """
    scored = [run for run in runs if run.plan is not None and not run.error]
    existing: dict[uuid.UUID, dict[int, Prediction]] = {run.case.id: {} for run in scored}
    retried = [run.case.id for run in scored if run.case.processing_attempts > 1]
    if retried:
        for prediction in Prediction.objects.filter(case_id__in=retried).select_related(
            "model_version"
        ):
            existing[prediction.case_id][prediction.model_version_id] = prediction
    by_version: dict[int, tuple[ModelVersion, str, list[_CaseRun]]] = {}
    for run in scored:
        assert run.plan is not None
        run.predictions = existing[run.case.id]
        for version, role in run.plan.all_versions():
            if version.pk in run.predictions:
                continue
            by_version.setdefault(version.pk, (version, role, []))[2].append(run)
    for version, role, version_runs in by_version.values():
        todo = [r for r in version_runs if r.image is not None]
        if not todo:
            continue
        started = time.perf_counter()
        try:
            results, embeddings = predict_images_with_embeddings(
                version, [r.image for r in todo if r.image is not None]
            )
        except ModelLoadError as exc:
            _record_failure(todo, version, role, f"model {version.tag} could not be loaded: {exc}")
            continue
        except Exception as exc:
            logger.exception("model %s failed on a batch of %d", version.tag, len(todo))
            _record_failure(todo, version, role, f"model {version.tag} failed: {exc}")
            continue
        latency_ms = (time.perf_counter() - started) * 1000 / len(todo)
        if settings.LOOPGATE_MONITORING:
            from monitoring.metrics import model_observe

            model_observe(
                slug=todo[0].case.workflow.slug,
                version=version.tag,
                seconds_per_case=latency_ms / 1000,
                cases=len(todo),
            )
        rows = [
            Prediction(
                case=run.case,
                model_version=version,
                role=role,
                scores=result.scores_dict(),
                label=result.label,
                confidence=result.confidence,
                latency_ms=latency_ms,
            )
            for run, result in zip(todo, results, strict=True)
        ]
        try:
            with transaction.atomic():
                Prediction.objects.bulk_create(rows)
        except IntegrityError:
            # A redelivery raced us to some of them: one row at a time, keeping theirs.
            rows = [_prediction_store(row) for row in rows]
        scored_at = timezone.now()
        for index, (run, prediction) in enumerate(zip(todo, rows, strict=True)):
            assert run.predictions is not None
            run.predictions[version.pk] = prediction
            run.scored_at = scored_at
            if embeddings is not None:
                run.embeddings = (run.embeddings or {}) | {version.pk: embeddings[index]}


def _prediction_store(row: Prediction) -> Prediction:
    try:
        with transaction.atomic():
            row.save(force_insert=True)
        return row
    except IntegrityError:
        return Prediction.objects.select_related("model_version").get(
            case=row.case, model_version=row.model_version
        )


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
    return _cases_run(_cases_claim(case_ids=case_ids, stalled_after=stalled_after))


# When this process's last drain of each workflow ended (``time.monotonic()``).
_drains_ended: dict[int, float] = {}


def batch_wait_seconds(*, last_ended: float | None, now: float) -> float:
    """How long a drain waits before its first claim (D149). Cases arriving steadily
    (this process's previous drain of the workflow ended less than
    ``LOOPGATE_INFERENCE_BATCH_WAIT_MS`` ago): that long, so that the cases arriving
    meanwhile form one batch instead of a drain each. After a quiet spell: not at all,
    so that a lone case is claimed at once."""
    wait = max(0.0, settings.LOOPGATE_INFERENCE_BATCH_WAIT_MS / 1000)
    if last_ended is None or now - last_ended >= wait:
        return 0.0
    return wait


def workflow_drain(*, workflow_id: int) -> int:
    """Score and route the workflow's waiting cases, a batch at a time, until none wait.

    Clears the workflow's wake-up flag first (``processing.wakeups``): a case committed
    after that wakes a new drain, and one committed before it is seen by the claims
    below. Each batch claims up to ``LOOPGATE_INFERENCE_BATCH_SIZE`` of the oldest
    ``received`` cases (whatever arrived while the previous batch ran, so batches grow
    with the load); a batch that is not full means none were left, and the drain ends.
    After ``LOOPGATE_DRAIN_MAX_SECONDS`` it wakes a successor instead of going on, so one
    message never holds a worker for long. A drain that follows the previous one closely
    waits ``LOOPGATE_INFERENCE_BATCH_WAIT_MS`` first (``batch_wait_seconds``), before it
    clears the flag: the cases committed meanwhile publish no message of their own and
    join its first batch. Returns how many cases were routed. Idempotent like
    ``cases_process``.
    """
    from processing.wakeups import wake_flags

    started = time.monotonic()
    wait = batch_wait_seconds(last_ended=_drains_ended.get(workflow_id), now=started)
    if wait > 0:
        time.sleep(wait)
    try:
        wake_flags().clear(workflow_id)
    except Exception:
        logger.warning("workflow %s: wake-up flag not cleared", workflow_id, exc_info=True)
    size = max(1, settings.LOOPGATE_INFERENCE_BATCH_SIZE)
    stalled_after = timedelta(seconds=settings.LOOPGATE_STALLED_AFTER_SECONDS)
    routed = 0
    try:
        while True:
            claimed = _cases_claim(workflow_id=workflow_id, limit=size, stalled_after=stalled_after)
            routed += _cases_run(claimed)
            if len(claimed) < size:
                return routed
            if time.monotonic() - started >= settings.LOOPGATE_DRAIN_MAX_SECONDS:
                workflow_wake(workflow_id=workflow_id)
                return routed
    finally:
        _drains_ended[workflow_id] = time.monotonic()


def _cases_run(claimed: _Claim) -> int:
    """Score and route claimed cases. The batch costs a fixed number of statements, not a
    number per case: the predictions' insert and the routing are one each (the plans were
    stored with the claim)."""
    runs = [_CaseRun(case=case) for case in claimed.cases]
    to_plan = []
    for run in runs:
        case = run.case
        if case.processing_attempts > MAX_PROCESSING_ATTEMPTS:
            run.error = f"gave up after {MAX_PROCESSING_ATTEMPTS} processing attempts"
        elif case.id in claimed.plans:
            to_plan.append(run)
    for run in to_plan:
        run.plan = claimed.plans[run.case.id]
        try:
            run.image = _open_image(run.case)
        except Exception as exc:  # noqa: BLE001 - a lost or unreadable file fails the case
            run.error = f"the stored image could not be read: {type(exc).__name__}: {exc}"
            run.unreadable = True
            continue
        run.measured = _measure(run.case, run.image)
        if run.plan.deciding is None:
            run.error = "no serving model is deployed for this workflow"
    _predict_missing(runs)
    return _cases_finish(runs)


def _measure(case: Case, image: Image.Image) -> ImageMeasurements | None:
    """The image's monitoring measurements; never fails the case."""
    if not settings.LOOPGATE_MONITORING:
        return None
    try:
        return image_measurements(image, file_size=case.image_bytes, image_format=case.image_format)
    except Exception:
        logger.warning("case %s: could not measure its image", case.id, exc_info=True)
        return None


def _measurement_of(run: _CaseRun, case: Case) -> Any:
    """What monitoring records of a routed case (``monitoring.services``)."""
    from monitoring.models import StageError
    from monitoring.services import CaseMeasurementInput

    prediction = None
    if run.plan is not None and run.plan.deciding is not None and run.predictions:
        prediction = run.predictions.get(run.plan.deciding.pk)
    version_id = prediction.model_version_id if prediction is not None else None
    stage = StageError.NONE
    if run.unreadable:
        stage = StageError.DECODE
    elif run.error or (model_runs(case.routed_level or case.workflow.level) and not prediction):
        stage = StageError.SCORING
    outcome = "failed" if run.unreadable else case.decision_source or "review"
    return CaseMeasurementInput(
        extra={"workflow": case.workflow.slug, "outcome": outcome},
        case_id=case.id,
        workflow_id=case.workflow_id,
        received_at=case.created_at,
        scoring_started_at=case.processing_started_at,
        scored_at=run.scored_at,
        metadata_keys=sorted(str(key) for key in (case.metadata or {})),
        image=run.measured,
        model_version_id=version_id,
        scores=prediction.scores if prediction is not None else None,
        embedding=(run.embeddings or {}).get(version_id) if version_id is not None else None,
        error_stage=stage,
    )


def _cases_finish(runs: list[_CaseRun]) -> int:
    """Route the batch in one transaction, each case only if it is still ``processing``.

    A case whose image could not be read goes to ``failed`` instead (not counted). The
    whole batch is written in bulk (``_routes_apply``): one UPDATE of the cases, one
    INSERT of their events, one of review tasks, one of monitoring measurements.
    """
    if not runs:
        return 0
    measured = []
    routes: list[_Route] = []
    failures: list[CaseMove] = []
    routed_at = timezone.now()
    with transaction.atomic():
        # The batch's rows locked, and only their status read: the rest of each case is
        # the claim's copy (a case in processing is written by its claimer alone, and the
        # UPDATE below writes only the routing's fields), with its workflow as the claim
        # read it: a level changed while a batch runs applies from the next batch (D139).
        statuses = dict(
            Case.objects.select_for_update()
            .filter(id__in=[run.case.id for run in runs])
            .order_by("id")
            .values_list("id", "status")
        )
        for run in runs:
            case = run.case
            if statuses.get(case.id) != CaseStatus.PROCESSING:
                continue
            if run.unreadable:
                case.failure_reason = run.error
                failures.append(
                    CaseMove(
                        case=case,
                        to_status=CaseStatus.FAILED,
                        actor_type=ActorType.SYSTEM,
                        reason=run.error,
                        data={"attempt": case.processing_attempts},
                        fields=("failure_reason",),
                    )
                )
                measured.append((run, case))
                continue
            policy = policy_of(case.workflow)
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
            routes.append(
                _route_plan(
                    case=case,
                    policy=policy,
                    opinion=opinion,
                    deciding_prediction=deciding_prediction,
                    error=error,
                )
            )
            measured.append((run, case))
        _routes_apply(routes, failures=failures)
        rows = [_measurement_of(run, case) for run, case in measured]
        if rows and settings.LOOPGATE_MONITORING:
            from monitoring.services import measurements_store

            # One INSERT for the batch, in the routing transaction.
            routed_at = timezone.now()
            measurements_store(rows=rows, routed_at=routed_at)
    if rows and settings.LOOPGATE_MONITORING:
        from monitoring.metrics import batch_observe

        batch_observe(rows=rows, routed_at=routed_at)
    return len(routes)


def cases_stalled(
    *, older_than: timedelta, received_older_than: timedelta | None = None, limit: int = 500
) -> list[str]:
    """Cases a lost message or a dead worker left behind, to be queued again.

    ``received`` for longer than ``older_than`` (the broker lost the message; or
    ``received_older_than``, shorter, right after a reconnection to the broker), or
    ``processing`` for longer than that, or claimed by a worker process that is gone
    (see ``_dead_claims``): those need not wait for the stall time.

    A case is listed again only once ``older_than`` has passed since the sweeper last
    queued it (``requeued_at``, set by ``cases_mark_requeued``), so a backlog older than
    the stall time is not published again on every sweep; a requeue before the current
    claim does not count.
    """
    now = timezone.now()
    cutoff = now - older_than
    received_cutoff = now - (received_older_than or older_than)
    received = Case.objects.filter(
        Q(requeued_at__isnull=True) | Q(requeued_at__lt=received_cutoff),
        status=CaseStatus.RECEIVED,
        created_at__lt=received_cutoff,
    )
    ids = list(received.values_list("id", flat=True)[:limit])
    processing = list(
        Case.objects.filter(status=CaseStatus.PROCESSING)
        .order_by("processing_started_at")
        .values_list("id", "claimed_by", "processing_started_at", "requeued_at")[
            : max(0, limit - len(ids))
        ]
    )
    dead = _dead_claims(claims={claim for _, claim, _, _ in processing}, now=now)

    def requeued_lately(started: Any, requeued: Any) -> bool:
        return (
            requeued is not None and requeued >= cutoff and (started is None or requeued >= started)
        )

    ids += [
        case_id
        for case_id, claim, started, requeued in processing
        if not requeued_lately(started, requeued)
        and (claim in dead or started is None or started < cutoff)
    ]
    return [str(i) for i in ids]


def cases_release_dead_claims(*, limit: int = 500) -> list[str]:
    """Put the cases claimed by worker processes that are gone back in the queue.

    They go back to ``received`` (an event says whose claim ended), so the next batch of
    their workflow takes them as companions, oldest first, instead of their waiting
    behind every message queued since. Under the row locks, and only while the case is
    still ``processing`` under the same claim: if the claimer was alive after all, its
    routing finds the case no longer ``processing`` and leaves it, so nothing is decided
    twice. Returns the released ids, for the caller to publish.
    """
    now = timezone.now()
    claims = set(
        Case.objects.filter(status=CaseStatus.PROCESSING)
        .exclude(claimed_by="")
        .values_list("claimed_by", flat=True)
        .distinct()[:limit]
    )
    dead = _dead_claims(claims=claims, now=now)
    if not dead:
        return []
    with transaction.atomic():
        released = list(
            Case.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=CaseStatus.PROCESSING, claimed_by__in=dead)
            .order_by("id")[:limit]
        )
        cases_transition(
            cases=released,
            to_status=CaseStatus.RECEIVED,
            actor_type=ActorType.SYSTEM,
            reason="its worker process is gone; back in the queue",
            data_of=lambda case: {
                "claimed_by": case.claimed_by,
                "attempt": case.processing_attempts,
            },
        )
        Case.objects.filter(id__in=[case.id for case in released]).update(claimed_by="")
    return [str(case.id) for case in released]


def cases_mark_requeued(*, case_ids: list[str]) -> None:
    """Record that the sweeper queued these cases again (see ``cases_stalled``)."""
    Case.objects.filter(
        id__in=case_ids, status__in=(CaseStatus.RECEIVED, CaseStatus.PROCESSING)
    ).update(requeued_at=timezone.now())


def cases_publish_pending(*, limit: int = 500) -> int:
    """Wake the workflows of the cases whose wake-up the broker refused; how many cases.

    One drain message per workflow (forced: a flag may have outlived its message).
    """
    pending = list(
        Case.objects.filter(publish_pending=True, status=CaseStatus.RECEIVED)
        .order_by("created_at")
        .values_list("id", "workflow_id")[:limit]
    )
    by_workflow: dict[int, list[uuid.UUID]] = {}
    for case_id, workflow_id in pending:
        by_workflow.setdefault(workflow_id, []).append(case_id)
    published = [
        case_id
        for workflow_id, case_ids in by_workflow.items()
        if workflow_wake(workflow_id=workflow_id, force=True)
        for case_id in case_ids
    ]
    Case.objects.filter(id__in=published).update(publish_pending=False)
    return len(published)
