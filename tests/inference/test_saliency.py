from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.architectures import build_model
from inference.loader import load_model
from inference.saliency import SaliencyUnavailable, saliency_map
from inference.spec import ModelSpec
from inference.training import save_weights


@pytest.fixture
def loaded(tiny_spec: ModelSpec, saved_weights: tuple[Path, str]):
    path, sha256 = saved_weights
    return load_model(tiny_spec, path, expected_sha256=sha256)


@pytest.mark.parametrize("size", [(32, 32), (120, 80)])
def test_overlay_is_rgb_at_the_input_size(loaded, rgb_image_factory, size) -> None:
    image = rgb_image_factory(0, size=size)
    overlay = saliency_map(loaded, image)
    assert overlay.mode == "RGB"
    assert overlay.size == image.size
    assert not np.array_equal(np.asarray(overlay), np.asarray(image))


def test_an_explicit_target_label_is_used(loaded, rgb_image_factory) -> None:
    image = rgb_image_factory(1, size=(48, 48))
    assert saliency_map(loaded, image, target_label="crack").size == (48, 48)
    with pytest.raises(ValueError, match="unknown target label"):
        saliency_map(loaded, image, target_label="dent")


def test_saliency_leaves_no_gradients_behind(loaded, rgb_image_factory) -> None:
    saliency_map(loaded, rgb_image_factory(2))
    assert all(parameter.grad is None for parameter in loaded._module.parameters())


@pytest.mark.parametrize("architecture", ["resnet18", "squeezenet1_1", "shufflenet_v2_x0_5"])
def test_other_architectures_have_a_target_layer(
    architecture: str, tmp_path: Path, rgb_image_factory
) -> None:
    spec = ModelSpec(architecture, ("a", "b"), 64)
    path = tmp_path / "model.pt"
    save_weights(build_model(spec).state_dict(), path)
    image = rgb_image_factory(3, size=(64, 64))
    assert saliency_map(load_model(spec, path), image).size == (64, 64)


def test_torchscript_has_no_saliency(loaded, rgb_image_factory) -> None:
    loaded.spec = ModelSpec("torchscript", loaded.spec.labels, loaded.spec.input_size)
    with pytest.raises(SaliencyUnavailable):
        saliency_map(loaded, rgb_image_factory(4))
