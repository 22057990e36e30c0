"""Choosing the torch device from a setting (``auto``, ``cpu`` or ``cuda``), how many CPU
threads a worker process gives a model, and moving a batch to its device."""

from __future__ import annotations

import os
from pathlib import Path

import torch

DEVICE_SETTINGS: tuple[str, ...] = ("auto", "cpu", "cuda")


class DeviceUnavailable(RuntimeError):
    """The setting asks for a device this machine does not have."""


def resolve_device(setting: str) -> str:
    """Map a device setting to a concrete torch device name (``"cpu"`` or ``"cuda"``).

    ``auto`` picks CUDA when it is available and the CPU otherwise; ``cuda``
    raises ``DeviceUnavailable`` (a ``RuntimeError``) when there is no usable GPU
    rather than silently falling back; any other value raises ``ValueError``.
    """
    normalised = setting.strip().lower() if isinstance(setting, str) else setting
    if normalised == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if normalised == "cpu":
        return "cpu"
    if normalised == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                "device setting is 'cuda' but torch.cuda.is_available() is False: "
                "no usable GPU or CUDA driver on this machine; use 'auto' or 'cpu'"
            )
        return "cuda"
    raise ValueError(f"unknown device setting {setting!r}; expected one of {DEVICE_SETTINGS}")


# A model below this many parameters runs a batch in about a millisecond on one core:
# splitting that over threads costs more in wake-ups than it saves.
SMALL_MODEL_PARAMETERS = 5_000_000
# Past this many threads one process's forward pass stops getting faster on a CPU.
MAX_THREADS_PER_PROCESS = 8


def cpu_threads_policy(
    *,
    cores: int,
    processes: int = 1,
    parameters: int | None = None,
    requested: int | None = None,
) -> int:
    """How many intra-op CPU threads one worker process gives a model (pure).

    * ``requested`` (the ``LOOPGATE_TORCH_THREADS`` setting), when given, wins for every
      model: the operator decided.
    * A small model (fewer than ``SMALL_MODEL_PARAMETERS`` parameters, e.g. the demo's
      MobileNetV3) gets one thread: its batch is too short for more to pay.
    * Otherwise, and when the size is not known (the process's budget), the process gets
      its share of the cores: ``cores // processes``, at least 1 and at most
      ``MAX_THREADS_PER_PROCESS``, so the worker processes of a host never ask for more
      threads than it has cores and none waits on another's spinning threads.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"requested thread count must be at least 1, got {requested}")
        return requested
    if cores < 1 or processes < 1:
        raise ValueError(f"cores and processes must be at least 1, got {cores}, {processes}")
    if parameters is not None and parameters < SMALL_MODEL_PARAMETERS:
        return 1
    return max(1, min(MAX_THREADS_PER_PROCESS, cores // processes))


def available_cores() -> int:
    """The CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def worker_processes() -> int:
    """How many worker processes share this host's cores: ``LOOPGATE_WORKER_PROCESSES``,
    which the Celery worker sets from its pool size when it starts (1 when unset)."""
    try:
        return max(1, int(os.environ.get("LOOPGATE_WORKER_PROCESSES", "1")))
    except ValueError:
        return 1


def to_device(batch: torch.Tensor, device: str) -> torch.Tensor:
    """``batch`` on ``device``: on a GPU through pinned host memory, copied asynchronously
    (the copy overlaps the work queued before it); on the CPU, the tensor itself."""
    if torch.device(device).type != "cuda":
        return batch
    return batch.pin_memory().to(device, non_blocking=True)


def configure_cpu_threads(count: int) -> None:
    """Set torch's intra-op CPU thread count for this process (call once, at worker start).

    On a machine shared with other busy processes, torch's default (one
    thread per core) can oversubscribe the CPU; its threads then spin-wait
    and inference slows down many times over. One or two threads per worker
    process, with more worker processes, is the robust choice.
    """
    if count < 1:
        raise ValueError(f"thread count must be at least 1, got {count}")
    torch.set_num_threads(count)
