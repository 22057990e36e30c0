"""Monitoring writes: per-case measurements (from the worker), drift checks and their alerts.

``measurements_store`` is called by ``processing.services`` inside the routing
transaction of a batch: one INSERT for the whole batch. ``monitoring_check_workflow``
(Celery beat, via ``monitoring.tasks``) compares the newest cases with the reference
window (``decisions.drift``), records a ``DriftCheck`` and raises or resolves the
``input_drift`` and ``accuracy_estimate`` alerts through ``automation.services``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.types import User
from automation.models import Alert, AlertKind
from automation.selectors import alerts_firing
from automation.services import _alerts_resolve, alert_raise, automation_update
from decisions.drift import (
    DriftConfig,
    DriftReport,
    drift_check,
    label_free_accuracy,
    persistent,
)
from decisions.routing import AUTOMATED_LEVELS, LEVEL_ORDER, Level, level_rank
from inference.measure import INPUT_METRICS, OUTPUT_METRICS, ImageMeasurements
from kernel.errors import DomainError, InvalidInput
from modelops.retraining import retraining_trigger
from monitoring.models import CaseMeasurement, DriftCheck, MonitoringSettings, StageError
from monitoring.selectors import (
    ReferenceWindow,
    measured_count,
    measurements_recent,
    measurements_reference,
    monitoring_settings_of,
    reference_window,
)
from workflows.models import Workflow

logger = logging.getLogger(__name__)

DRIFT_METRICS = tuple(name for name in INPUT_METRICS if name not in ("width", "height")) + (
    OUTPUT_METRICS
)


@dataclass
class CaseMeasurementInput:
    """What the worker knows of one case when it routes it."""

    case_id: Any
    workflow_id: int
    received_at: datetime
    scoring_started_at: datetime | None
    scored_at: datetime | None
    metadata_keys: list[str]
    image: ImageMeasurements | None = None
    model_version_id: int | None = None
    scores: dict[str, float] | None = None
    embedding: list[float] | None = None
    error_stage: str = StageError.NONE
    extra: dict[str, Any] = field(default_factory=dict)


def measurements_store(*, rows: Sequence[CaseMeasurementInput], routed_at: datetime) -> int:
    """One INSERT for the batch; a case measured before (a redelivery) keeps its row."""
    from inference.measure import output_measurements, rounded

    objects = []
    for row in rows:
        output = None
        if row.scores:
            try:
                output = output_measurements(row.scores)
            except ValueError:
                output = None
        image = row.image
        objects.append(
            CaseMeasurement(
                case_id=row.case_id,
                workflow_id=row.workflow_id,
                model_version_id=row.model_version_id,
                received_at=row.received_at,
                scoring_started_at=row.scoring_started_at,
                scored_at=row.scored_at,
                routed_at=routed_at,
                error_stage=row.error_stage,
                width=image.width if image else None,
                height=image.height if image else None,
                file_size=image.file_size if image else None,
                image_format=image.image_format if image else "",
                brightness=image.brightness if image else None,
                contrast=image.contrast if image else None,
                sharpness=image.sharpness if image else None,
                saturation=image.saturation if image else None,
                clipped=image.clipped if image else None,
                metadata_keys=row.metadata_keys,
                label=output.label if output else "",
                confidence=output.confidence if output else None,
                margin=output.margin if output else None,
                entropy=output.entropy if output else None,
                embedding=rounded(row.embedding) if row.embedding else None,
            )
        )
    if not objects:
        return 0
    CaseMeasurement.objects.bulk_create(objects, ignore_conflicts=True)
    return len(objects)


# --- Settings and the reference window --------------------------------------------------


# The alert actions an admin may arm, per alert kind: (step down, start retraining).
ALERT_ACTIONS: dict[str, tuple[str, str]] = {
    AlertKind.INPUT_DRIFT: ("step_down_on_drift", "retrain_on_drift"),
    AlertKind.ACCURACY_ESTIMATE: ("step_down_on_estimate", "retrain_on_estimate"),
}
ACTION_FIELDS = tuple(name for fields in ALERT_ACTIONS.values() for name in fields)

SETTINGS_FIELDS = (
    "reference_size",
    "window",
    "check_every",
    "alpha",
    "min_effect",
    "persistence",
    "estimate_alert_below",
    *ACTION_FIELDS,
)
_BOUNDS: dict[str, tuple[float, float]] = {
    "reference_size": (100, 20_000),
    "window": (100, 5_000),
    "check_every": (10, 5_000),
    "alpha": (1e-6, 0.1),
    "min_effect": (0.0, 10.0),
    "persistence": (1, 20),
    "estimate_alert_below": (0.0, 1.0),
}


def monitoring_settings_update(
    *, workflow: Workflow, actor: User, changes: dict[str, Any]
) -> MonitoringSettings:
    """Change a workflow's drift thresholds (a workflow admin); every value checked."""
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS) - {"reference_from", "reference_until"})
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not a monitoring setting", field=unknown[0])
    for name, (low, high) in _BOUNDS.items():
        value = changes.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (low <= value <= high)
        ):
            raise InvalidInput(f"{name}: must be a number from {low:g} to {high:g}", field=name)
    for name in ACTION_FIELDS:
        if name in changes and not isinstance(changes[name], bool):
            raise InvalidInput(f"{name}: must be true or false", field=name)
    start, end = changes.get("reference_from"), changes.get("reference_until")
    if (start is None) != (end is None):
        raise InvalidInput(
            "reference_from: give both ends of a pinned reference, or neither",
            field="reference_from",
        )
    if start is not None and end is not None and start >= end:
        raise InvalidInput("reference_until: must be after reference_from", field="reference_until")
    with transaction.atomic():
        settings_row, _ = MonitoringSettings.objects.select_for_update().get_or_create(
            workflow=workflow
        )
        for name in SETTINGS_FIELDS:
            if name in changes:
                setattr(settings_row, name, changes[name])
        if "reference_from" in changes:
            settings_row.reference_from = start
            settings_row.reference_until = end
            settings_row.reference_pinned_by = actor if start is not None else None
        settings_row.save()
    return settings_row


def drift_config_of(settings_row: MonitoringSettings) -> DriftConfig:
    return DriftConfig(
        alpha=settings_row.alpha,
        min_effect=settings_row.min_effect,
        persistence=settings_row.persistence,
    )


# --- The periodic check --------------------------------------------------------------


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    return {
        name: [row[name] for row in rows if row.get(name) is not None] for name in DRIFT_METRICS
    }


def _embeddings(rows: Sequence[dict[str, Any]]) -> list[list[float]] | None:
    vectors = [row["embedding"] for row in rows if row.get("embedding")]
    if len(vectors) < 2 or len({len(vector) for vector in vectors}) != 1:
        return None
    return vectors


def drift_report_of(
    *, reference: Sequence[dict[str, Any]], recent: Sequence[dict[str, Any]], config: DriftConfig
) -> DriftReport:
    ref_emb, new_emb = _embeddings(reference), _embeddings(recent)
    return drift_check(
        reference=_columns(reference),
        recent=_columns(recent),
        reference_labels=[row["label"] for row in reference if row.get("label")],
        recent_labels=[row["label"] for row in recent if row.get("label")],
        reference_embeddings=ref_emb if ref_emb and new_emb else None,
        recent_embeddings=new_emb if ref_emb and new_emb else None,
        config=config,
    )


def estimate_of(
    *, reference: Sequence[dict[str, Any]], recent: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """The label-free accuracy estimate on ``recent`` (see ``decisions.drift``)."""
    confidences = [row["confidence"] for row in recent if row.get("confidence") is not None]
    if not confidences:
        return None
    labelled = [
        row
        for row in reference
        if row.get("confidence") is not None and row.get("human_label") and row.get("label")
    ]
    mix = Counter(row["human_label"] for row in labelled)
    estimate = label_free_accuracy(
        recent_confidences=confidences,
        reference_confidences=[row["confidence"] for row in labelled],
        reference_correct=[row["label"] == row["human_label"] for row in labelled],
        reference_mix=mix if len(labelled) >= 50 else None,
        recent_labels=[row["label"] for row in recent if row.get("label")],
    )
    return estimate.as_dict()


def monitoring_check_workflow(*, workflow_id: int, force: bool = False) -> DriftCheck | None:
    """Compare the newest cases with the reference; record the check; raise or resolve.

    Runs when at least ``check_every`` cases of the serving version were measured since
    the last check (or ``force``). Returns the check recorded, if any.
    """
    workflow = Workflow.objects.filter(pk=workflow_id).first()
    if workflow is None:
        return None
    settings_row = monitoring_settings_of(workflow=workflow)
    window: ReferenceWindow | None = reference_window(workflow=workflow, settings=settings_row)
    if window is None:
        return None
    seen = measured_count(workflow=workflow, model_version_id=window.model_version_id)
    last = DriftCheck.objects.filter(workflow=workflow).order_by("-created_at", "-id").first()
    if (
        not force
        and last is not None
        and last.model_version_id == window.model_version_id
        and seen - last.cases_seen < settings_row.check_every
    ):
        return None
    reference = measurements_reference(window=window, limit=settings_row.reference_size)
    recent = measurements_recent(window=window, reference=reference, limit=settings_row.window)
    config = drift_config_of(settings_row)
    report = drift_report_of(reference=reference, recent=recent, config=config)
    estimate = estimate_of(reference=reference, recent=recent) if recent else None
    history = [
        tuple(check.drifted)
        for check in reversed(
            list(
                DriftCheck.objects.filter(
                    workflow=workflow, model_version_id=window.model_version_id
                ).order_by("-created_at", "-id")[: config.persistence - 1]
            )
        )
    ]
    alarm = persistent([*history, report.drifted], config.persistence)
    with transaction.atomic():
        check = DriftCheck.objects.create(
            workflow=workflow,
            model_version_id=window.model_version_id,
            measured_until=recent[-1]["routed_at"] if recent else timezone.now(),
            cases_seen=seen,
            enough_data=report.enough_data,
            drifted=list(report.drifted),
            alarm=list(alarm),
            report=report.as_dict(),
            estimate=estimate,
            reference=window.as_dict() | {"n": len(reference)},
        )
        _drift_alert(workflow=workflow, check=check, report=report, settings_row=settings_row)
        _estimate_alert(workflow=workflow, check=check, settings_row=settings_row)
    return check


def _drift_alert(
    *,
    workflow: Workflow,
    check: DriftCheck,
    report: DriftReport,
    settings_row: MonitoringSettings,
) -> None:
    active = alerts_firing(workflow=workflow, kind=AlertKind.INPUT_DRIFT)
    if check.alarm:
        data = {"check": check.pk, "metrics": check.alarm, "reason": report.reason}
        if active:
            alert = active[0]
            alert.data = alert.data | data
            alert.save(update_fields=["data"])
            return
        named = ", ".join(check.alarm)
        alert = alert_raise(
            workflow=workflow,
            kind=AlertKind.INPUT_DRIFT,
            message=(
                f"Drift in {named}: the newest cases differ from the reference window "
                f"({report.reason}). Check the line (lighting, camera, parts) before "
                "wrong decisions pile up; audits will confirm the accuracy."
            ),
            data=data,
        )
        alert_actions_run(workflow=workflow, alert=alert, settings_row=settings_row, cause=named)
        return
    if active and report.enough_data and not check.drifted:
        _alerts_resolve(
            workflow=workflow,
            kind=AlertKind.INPUT_DRIFT,
            resolution=f"the newest cases match the reference again (check {check.pk})",
        )


def alert_actions_run(
    *, workflow: Workflow, alert: Alert, settings_row: MonitoringSettings, cause: str
) -> dict[str, Any]:
    """Do what an admin armed for a new alert of this kind; record it on the alert.

    Step down: one level (full -> partial -> assistance) through
    ``automation.services.automation_update``, logged as automatic with the alert's id,
    only at an automated level. Retraining: a run through
    ``modelops.retraining.retraining_trigger``, as the retraining rule starts one. Each
    action runs in its own savepoint; one refused (no automated level, a run already
    active, too few labels) is recorded with its reason and never undoes the alert or
    the other action. ``alert.data["actions"]`` says what happened, each with a
    ``summary`` that channels (email) print. Call in the transaction that raised the
    alert: it commits or rolls back with it.
    """
    kind_fields = ALERT_ACTIONS.get(alert.kind)
    if kind_fields is None:
        return {}
    step_down_field, retrain_field = kind_fields
    actions: dict[str, Any] = {}
    if getattr(settings_row, step_down_field):
        actions["step_down"] = _alert_step_down(workflow=workflow, alert=alert, cause=cause)
    if getattr(settings_row, retrain_field):
        actions["retraining"] = _alert_retrain(workflow=workflow, alert=alert, cause=cause)
    if actions:
        alert.data = {**alert.data, "actions": actions}
        alert.save(update_fields=["data"])
    return actions


def _alert_step_down(*, workflow: Workflow, alert: Alert, cause: str) -> dict[str, Any]:
    workflow.refresh_from_db(fields=["level"])
    from_level = Level(workflow.level)
    if from_level not in AUTOMATED_LEVELS:
        return {
            "done": False,
            "summary": f"no step down: the level is {from_level.value}, the model decides nothing",
        }
    to_level = LEVEL_ORDER[level_rank(from_level) - 1]
    try:
        change = automation_update(
            workflow=workflow,
            actor=None,
            changes={"level": to_level.value},
            reason=(
                f"automatic step down on the {alert.kind.replace('_', ' ')} alert {alert.pk} "
                f"({cause}), as the workflow's admins chose"
            ),
            automatic=True,
            evidence={"check": alert.kind, "alert": alert.pk},
        )
    except DomainError as exc:
        logger.warning("step down on alert %s refused: %s", alert.pk, exc.message)
        return {"done": False, "summary": f"no step down: {exc.message}"}
    return {
        "done": True,
        "level_change": change.pk,
        "from": from_level.value,
        "to": to_level.value,
        "summary": f"stepped down from {from_level.value} to {to_level.value}",
    }


def _alert_retrain(*, workflow: Workflow, alert: Alert, cause: str) -> dict[str, Any]:
    try:
        run = retraining_trigger(
            workflow=workflow,
            trigger=f"alert:{alert.kind}",
            why=f"started by the {alert.kind.replace('_', ' ')} alert {alert.pk}: {cause}",
        )
    except DomainError as exc:
        logger.info("retraining on alert %s not started: %s", alert.pk, exc.message)
        return {"done": False, "summary": f"no retraining run: {exc.message}"}
    return {
        "done": True,
        "training_run": run.pk,
        "summary": f"retraining run {run.pk} queued ({run.epochs_total} epochs)",
    }


def _estimate_alert(
    *, workflow: Workflow, check: DriftCheck, settings_row: MonitoringSettings
) -> None:
    estimate = check.estimate
    if not estimate or not check.enough_data:
        return
    floor = (
        settings_row.estimate_alert_below
        if settings_row.estimate_alert_below is not None
        else workflow.target_accuracy
    )
    active = alerts_firing(workflow=workflow, kind=AlertKind.ACCURACY_ESTIMATE)
    value = float(estimate["estimate"])
    if value < floor and not active:
        alert = alert_raise(
            workflow=workflow,
            kind=AlertKind.ACCURACY_ESTIMATE,
            message=(
                f"The label-free accuracy estimate of the serving model fell to "
                f"{value:.1%} ({estimate['method']}), below {floor:.1%}, before enough "
                "audits confirm it. Audits will tell; consider a higher audit rate."
            ),
            data={"check": check.pk, "floor": floor, **estimate},
        )
        alert_actions_run(
            workflow=workflow,
            alert=alert,
            settings_row=settings_row,
            cause=f"estimated accuracy {value:.1%}, below {floor:.1%}",
        )
    elif value >= floor and active:
        _alerts_resolve(
            workflow=workflow,
            kind=AlertKind.ACCURACY_ESTIMATE,
            resolution=f"the estimate is back at {value:.1%} (check {check.pk})",
        )


def monitoring_check_all() -> int:
    """Every workflow whose model runs: how many checks were recorded."""
    recorded = 0
    for workflow_id in Workflow.objects.exclude(level=Level.HUMAN_ONLY.value).values_list(
        "pk", flat=True
    ):
        try:
            if monitoring_check_workflow(workflow_id=workflow_id) is not None:
                recorded += 1
        except Exception:
            logger.exception("monitoring check failed for workflow %s", workflow_id)
    return recorded
