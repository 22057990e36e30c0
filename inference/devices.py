"""Choosing the torch device from a setting: ``auto``, ``cpu`` or ``cuda``."""

from __future__ import annotations

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
