"""The Django side of running a model: from a ModelVersion row to the ML core.

Only frozen dataclasses come back from ``inference``; tensors stay there.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from PIL import Image

from inference.devices import resolve_device
from inference.loader import LoadedModel, get_model
from inference.spec import ModelSpec, PredictionResult
from modelops.models import ModelVersion


def model_spec_of(version: ModelVersion) -> ModelSpec:
    return ModelSpec(
        architecture=version.architecture,
        labels=tuple(version.labels),
        input_size=version.input_size,
        mean=tuple(version.mean),
        std=tuple(version.std),
        arch_kwargs=tuple(sorted((version.arch_kwargs or {}).items())),
    )


def inference_device() -> str:
    return resolve_device(settings.LOOPGATE_INFERENCE_DEVICE)


def loaded_model_of(version: ModelVersion) -> LoadedModel:
    """The version's model, loaded once per process; raises ModelLoadError."""
    return get_model(
        model_spec_of(version),
        version.weights.path,
        device=inference_device(),
        expected_sha256=version.sha256,
    )


def predict_images(version: ModelVersion, images: Sequence[Image.Image]) -> list[PredictionResult]:
    return loaded_model_of(version).predict(images)
