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
