"""Monitoring reads: the reference window, measured cases, and the dashboard's series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from automation.selectors import last_raise
from modelops.models import Deployment, DeploymentRole
from monitoring.models import CaseMeasurement, MonitoringSettings
from workflows.models import Workflow

MEASURED_FIELDS = (
    "routed_at",
    "brightness",
    "contrast",
    "sharpness",
    "saturation",
    "clipped",
    "file_size",
    "width",
    "height",
    "confidence",
    "margin",
    "entropy",
    "label",
    "embedding",
    "case__human_label",
)


@dataclass(frozen=True)
class ReferenceWindow:
    """Where the reference starts (and, pinned, ends) for the serving version."""

    model_version_id: int
    start: datetime | None
    end: datetime | None
    pinned: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version_id,
            "from": self.start.isoformat() if self.start else None,
            "until": self.end.isoformat() if self.end else None,
            "pinned": self.pinned,
            "why": self.why,
        }


def monitoring_settings_of(*, workflow: Workflow) -> MonitoringSettings:
    """The workflow's settings row, or an unsaved one with the defaults."""
    row = MonitoringSettings.objects.filter(workflow=workflow).first()
    return row if row is not None else MonitoringSettings(workflow=workflow)


def reference_window(*, workflow: Workflow, settings: MonitoringSettings) -> ReferenceWindow | None:
    """The serving version's reference: pinned, or from the later of its going live and
    the last raise of the level. None without a serving version."""
    serving = (
        Deployment.objects.filter(workflow=workflow, role=DeploymentRole.SERVING, active=True)
        .order_by("-created_at")
        .first()
    )
    if serving is None:
        return None
    if settings.reference_from is not None and settings.reference_until is not None:
        return ReferenceWindow(
            serving.model_version_id,
            settings.reference_from,
            settings.reference_until,
            True,
            "pinned by an admin",
        )
    start, why = serving.created_at, "since the serving version went live"
    raised = last_raise(workflow=workflow)
    if raised is not None and raised.created_at > start:
        start, why = raised.created_at, f"since the level was raised to {raised.to_level}"
    return ReferenceWindow(serving.model_version_id, start, None, False, why)


def _rows(qs: Any) -> list[dict[str, Any]]:
    rows = list(qs.values(*MEASURED_FIELDS))
    for row in rows:
        row["human_label"] = row.pop("case__human_label")
    return rows


def measurements_reference(*, window: ReferenceWindow, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` measured cases of the window (oldest first)."""
    qs = CaseMeasurement.objects.filter(model_version_id=window.model_version_id)
    if window.start is not None:
        qs = qs.filter(routed_at__gte=window.start)
    if window.end is not None:
        qs = qs.filter(routed_at__lte=window.end)
    return _rows(qs.order_by("routed_at", "case_id")[:limit])


def measurements_recent(
    *, window: ReferenceWindow, reference: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` measured cases after the reference (oldest first)."""
    if not reference:
        return []
    qs = CaseMeasurement.objects.filter(
        model_version_id=window.model_version_id, routed_at__gt=reference[-1]["routed_at"]
    )
    rows = _rows(qs.order_by("-routed_at", "-case_id")[:limit])
    rows.reverse()
    return rows


def measured_count(*, workflow: Workflow, model_version_id: int) -> int:
    return CaseMeasurement.objects.filter(
        workflow=workflow, model_version_id=model_version_id
    ).count()
