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

_MOBILENET_OPTIONS = frozenset({"width_mult", "reduced_tail", "dilated", "dropout"})
_RESNET_OPTIONS = frozenset({"zero_init_residual"})

# Builders silently swallow unknown keyword arguments (MobileNetV3 takes
# ``**kwargs``), so each architecture's accepted options are listed here.
_ALLOWED_OPTIONS: dict[str, frozenset[str]] = {
    "mobilenet_v3_small": _MOBILENET_OPTIONS,
    "mobilenet_v3_large": _MOBILENET_OPTIONS,
    "resnet18": _RESNET_OPTIONS,
    "resnet34": _RESNET_OPTIONS,
    "squeezenet1_1": frozenset({"dropout"}),
    "shufflenet_v2_x0_5": frozenset(),
    "shufflenet_v2_x1_0": frozenset(),
    "efficientnet_b0": frozenset({"dropout", "stochastic_depth_prob"}),
}

SUPPORTED_ARCHITECTURES: tuple[str, ...] = tuple(sorted(_BUILDERS))


class UnsupportedArchitecture(ValueError):
    """The spec names an architecture outside the allow-list."""


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """An untrained model for ``spec``: random init, no pretrained weights, one output per label.

    Raises ``UnsupportedArchitecture`` for names outside ``SUPPORTED_ARCHITECTURES``
    (``torchscript`` included: a TorchScript file carries its own graph and is
    loaded, not built) and ``ValueError`` for ``arch_kwargs`` outside the
    architecture's options (``weights`` and ``num_classes`` never are) or with
    values the builder rejects.
    """
    builder = _BUILDERS.get(spec.architecture)
    if builder is None:
        raise UnsupportedArchitecture(
            f"unsupported architecture {spec.architecture!r}; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    kwargs = spec.arch_kwargs_dict()
    allowed = _ALLOWED_OPTIONS[spec.architecture]
    refused = sorted(set(kwargs) - allowed)
    if refused:
        raise ValueError(
            f"arch_kwargs {refused} not accepted for {spec.architecture}; "
            f"allowed: {sorted(allowed) or 'none'}"
        )
    try:
        return builder(weights=None, num_classes=spec.num_classes, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad arch_kwargs for {spec.architecture}: {error}") from error
