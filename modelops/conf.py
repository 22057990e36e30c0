"""Model-lifecycle settings with their defaults.

Each can be set in Django settings under the same name (``loopgate/settings.py`` or the
test settings); the default below applies otherwise.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Registration: the largest weights file accepted, and the limits of the sandboxed
    # load check (a child process; see inference.model_check).
    "LOOPGATE_MAX_MODEL_BYTES": 1024**3,
    "LOOPGATE_MODEL_CHECK_TIMEOUT_SECONDS": 120.0,
    "LOOPGATE_MODEL_CHECK_MEMORY_BYTES": 8 * 1024**3,
    # The runtime check at registration (a runtime other than eager): how many of the
    # workflow's labelled cases it compares on, and how far it may follow torch (D80).
    "LOOPGATE_RUNTIME_CHECK_SAMPLES": 64,
    "LOOPGATE_RUNTIME_MAX_ABS_DIFF": 1e-4,
    "LOOPGATE_RUNTIME_MIN_TOP1_AGREEMENT": 1.0,
    # The same for an int8 graph (D133), which must also be faster than the fp32 one.
    "LOOPGATE_RUNTIME_INT8_MAX_ABS_DIFF": 0.05,
    "LOOPGATE_RUNTIME_INT8_MIN_TOP1_AGREEMENT": 0.98,
    "LOOPGATE_RUNTIME_INT8_REQUIRE_FASTER": True,
    # Retraining: the device setting (auto, cpu, cuda) for the training worker, the
    # fewest labelled cases a run starts with, and the most it reads (newest first).
    "LOOPGATE_TRAINING_DEVICE": None,  # None: the same as LOOPGATE_INFERENCE_DEVICE
    "LOOPGATE_RETRAIN_MIN_LABELS": 20,
    "LOOPGATE_RETRAIN_MAX_LABELS": 20_000,
    "LOOPGATE_RETRAIN_THREADS": None,  # None: the ML core default (one thread, reproducible)
    # A running run whose worker has not reported for this long is marked failed.
    "LOOPGATE_TRAINING_STALE_SECONDS": 30 * 60,
    # The worker polls the cancel flag at most this often (it is checked between batches).
    "LOOPGATE_TRAINING_CANCEL_POLL_SECONDS": 0.5,
    # The comparison's verdict needs at least this many paired, labelled cases.
    "LOOPGATE_COMPARE_MIN_CASES": 30,
}


def modelops_setting(name: str) -> Any:
    """The setting ``name`` from Django settings, or its default here."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown modelops setting {name!r}")
    return getattr(settings, name, DEFAULTS[name])
