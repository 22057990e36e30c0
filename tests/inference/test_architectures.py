from __future__ import annotations

import pytest
import torch

from inference.architectures import SUPPORTED_ARCHITECTURES, UnsupportedArchitecture, build_model
from inference.spec import ModelSpec


@pytest.mark.parametrize("architecture", SUPPORTED_ARCHITECTURES)
def test_every_supported_architecture_outputs_one_score_per_label(architecture: str) -> None:
    spec = ModelSpec(architecture=architecture, labels=("a", "b", "c"), input_size=32)
    model = build_model(spec).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_the_minimum_allow_list_is_there() -> None:
    assert {"mobilenet_v3_small", "resnet18", "squeezenet1_1"} <= set(SUPPORTED_ARCHITECTURES)


@pytest.mark.parametrize("architecture", ["vit_h_14", "torchscript", "os.system", "alexnet"])
def test_unknown_architectures_are_refused_with_the_allowed_ones_named(architecture: str) -> None:
    spec = ModelSpec(architecture=architecture, labels=("a", "b"), input_size=32)
    with pytest.raises(UnsupportedArchitecture, match="mobilenet_v3_small") as raised:
        build_model(spec)
    assert isinstance(raised.value, ValueError)


def test_arch_kwargs_reach_the_builder() -> None:
    narrow = ModelSpec("mobilenet_v3_small", ("a", "b"), 32, arch_kwargs=(("width_mult", 0.5),))
    full = ModelSpec("mobilenet_v3_small", ("a", "b"), 32)
    count = lambda spec: sum(p.numel() for p in build_model(spec).parameters())  # noqa: E731
    assert count(narrow) < count(full)


@pytest.mark.parametrize(
    "arch_kwargs",
    [
        (("weights", "DEFAULT"),),
        (("num_classes", 9),),
        (("no_such_option", 1),),
        (("width_mult", "wide"),),
    ],
)
def test_bad_arch_kwargs_are_refused(arch_kwargs: tuple[tuple[str, object], ...]) -> None:
    spec = ModelSpec("mobilenet_v3_small", ("a", "b"), 32, arch_kwargs=arch_kwargs)
    with pytest.raises(ValueError):
        build_model(spec)
