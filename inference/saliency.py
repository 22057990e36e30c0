"""Where the model looked: Grad-CAM heatmaps over the input image.

Grad-CAM needs gradients, so it runs outside ``torch.inference_mode`` and
hooks the model's last convolutional stage. Hooks are per module, so calls on
one process-wide cached model are serialised with a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from inference.loader import LoadedModel, preprocess

HEATMAP_WEIGHT = 0.45


def _last_of(name: str) -> Callable[[torch.nn.Module], torch.nn.Module]:
    """The last block of the sequence ``name`` (``model.<name>[-1]``)."""

    def last(model: torch.nn.Module) -> torch.nn.Module:
        return list(model.get_submodule(name).children())[-1]

    return last


def _named(name: str) -> Callable[[torch.nn.Module], torch.nn.Module]:
    return lambda model: model.get_submodule(name)


_TARGET_LAYERS: dict[str, Callable[[torch.nn.Module], torch.nn.Module]] = {
    "mobilenet_v3_small": _last_of("features"),
    "mobilenet_v3_large": _last_of("features"),
    "efficientnet_b0": _last_of("features"),
    "squeezenet1_1": _last_of("features"),
    "resnet18": _last_of("layer4"),
    "resnet34": _last_of("layer4"),
    "shufflenet_v2_x0_5": _named("conv5"),
    "shufflenet_v2_x1_0": _named("conv5"),
}

_grad_cam_lock = threading.Lock()


class SaliencyUnavailable(ValueError):
    """No Grad-CAM target layer is known for this architecture (e.g. TorchScript)."""


def saliency_map(
    loaded_model: LoadedModel, image: Image.Image, *, target_label: str | None = None
) -> Image.Image:
    """An RGB image the size of ``image``: the image with a Grad-CAM heatmap blended over it.

    The heatmap explains ``target_label``, or the model's top label when it is
    ``None``. Red marks the regions that raised that label's score most.
    """
    spec = loaded_model.spec
    layer_for = _TARGET_LAYERS.get(spec.architecture)
    if layer_for is None:
        raise SaliencyUnavailable(
            f"no saliency for architecture {spec.architecture!r}; "
            f"supported: {', '.join(sorted(_TARGET_LAYERS))}"
        )
    if target_label is None:
        target_label = loaded_model.predict([image])[0].label
    elif target_label not in spec.labels:
        raise ValueError(f"unknown target label {target_label!r}; labels are {spec.labels}")
    module = loaded_model._module
    batch = preprocess(image, spec).unsqueeze(0).to(loaded_model.device)
    target = ClassifierOutputTarget(spec.labels.index(target_label))
    with _grad_cam_lock, GradCAM(model=module, target_layers=[layer_for(module)]) as cam:
        heat = cam(input_tensor=batch, targets=[target])[0]
        module.zero_grad(set_to_none=True)
    return _overlay(image.convert("RGB"), heat)


def _overlay(rgb: Image.Image, heat: np.ndarray) -> Image.Image:
    """Blend a [0, 1] heat array (any size) over ``rgb`` at ``rgb``'s size."""
    heat_image = Image.fromarray(np.asarray(heat, dtype=np.float32))
    resized = np.asarray(heat_image.resize(rgb.size, Image.Resampling.BILINEAR), dtype=np.float32)
    base = np.asarray(rgb, dtype=np.float32) / 255.0
    blended = show_cam_on_image(
        base, np.clip(resized, 0.0, 1.0), use_rgb=True, image_weight=1.0 - HEATMAP_WEIGHT
    )
    return Image.fromarray(blended)
