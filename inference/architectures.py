"""The allow-list of torchvision classification architectures Loopgate can build."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import models

from inference.spec import ModelSpec

_BUILDERS: dict[str, Callable[..., torch.nn.Module]] = {
    "mobilenet_v3_small": models.mobilenet_v3_small,
    "mobilenet_v3_large": models.mobilenet_v3_large,
    "resnet18": models.resnet18,
    "resnet34": models.resnet34,
    "squeezenet1_1": models.squeezenet1_1,
    "shufflenet_v2_x0_5": models.shufflenet_v2_x0_5,
    "shufflenet_v2_x1_0": models.shufflenet_v2_x1_0,
    "efficientnet_b0": models.efficientnet_b0,
}

SUPPORTED_ARCHITECTURES: tuple[str, ...] = tuple(sorted(_BUILDERS))


class UnsupportedArchitecture(ValueError):
    """The spec names an architecture outside the allow-list."""


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """An untrained model for ``spec``: random init, no pretrained weights, one output per label.

    Raises ``UnsupportedArchitecture`` for names outside ``SUPPORTED_ARCHITECTURES``
    (``torchscript`` included: a TorchScript file carries its own graph and is
    loaded, not built) and ``ValueError`` when ``arch_kwargs`` do not fit the builder.
    """
    builder = _BUILDERS.get(spec.architecture)
    if builder is None:
        raise UnsupportedArchitecture(
            f"unsupported architecture {spec.architecture!r}; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    kwargs = spec.arch_kwargs_dict()
    for reserved in ("weights", "num_classes", "progress"):
        if reserved in kwargs:
            raise ValueError(f"arch_kwargs may not set {reserved!r}")
    try:
        return builder(weights=None, num_classes=spec.num_classes, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad arch_kwargs for {spec.architecture}: {error}") from error
