"""Monitoring settings (Django settings of the same name override these defaults)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Measure each case in the worker (image statistics, output summary, embedding).
    "LOOPGATE_MONITORING": True,
    # The periodic drift check runs at most this often per workflow (Celery beat).
    "LOOPGATE_MONITORING_CHECK_SECONDS": 60.0,
}


def monitoring_setting(name: str) -> Any:
    if name not in DEFAULTS:
        raise KeyError(f"unknown monitoring setting {name!r}")
    return getattr(settings, name, DEFAULTS[name])
