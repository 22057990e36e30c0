from __future__ import annotations

import json

import pytest

from inference.spec import IMAGENET_MEAN, ModelSpec


def test_spec_is_hashable_and_round_trips_through_json() -> None:
    spec = ModelSpec("mobilenet_v3_small", ("ok", "bad"), 96, arch_kwargs=(("width_mult", 0.5),))
    assert hash(spec) == hash(ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))))
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.mean == IMAGENET_MEAN
    assert spec.num_classes == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"labels": ()},
        {"labels": ("ok", "ok")},
        {"labels": ("ok", "")},
        {"input_size": 0},
        {"std": (0.2, 0.0, 0.2)},
        {"mean": (0.5, 0.5)},
        {"arch_kwargs": (("width_mult", 0.5), ("width_mult", 1.0))},
        {"architecture": ""},
    ],
)
def test_invalid_specs_are_refused(kwargs: dict) -> None:
    arguments = {"architecture": "resnet18", "labels": ("ok", "bad"), "input_size": 64}
    with pytest.raises(ValueError):
        ModelSpec(**(arguments | kwargs))
