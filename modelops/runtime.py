"""The Django side of running a model: from a ModelVersion row to the ML core.

Only frozen dataclasses come back from ``inference``; tensors stay there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from PIL import Image

from inference.devices import available_cores, cpu_threads_policy, resolve_device, worker_processes
from inference.loader import LoadedModel, get_model
from inference.spec import ModelSpec, PredictionResult
from modelops.models import Deployment, ModelVersion

logger = logging.getLogger(__name__)


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


def model_threads(version: ModelVersion) -> int:
    """The CPU threads this process gives ``version``'s forward pass (D78): the
    ``LOOPGATE_TORCH_THREADS`` setting, else one for a small model and the process's
    share of the cores for a larger one (size from the registration's load check)."""
    parameters = (version.provenance or {}).get("load_check", {}).get("parameters") or None
    return cpu_threads_policy(
        cores=available_cores(),
        processes=worker_processes(),
        parameters=int(parameters) if parameters else None,
        requested=getattr(settings, "LOOPGATE_TORCH_THREADS", None),
    )


def loaded_model_of(version: ModelVersion) -> LoadedModel:
    """The version's model with its recorded runtime, loaded once per process; raises
    ModelLoadError (also when the runtime's file is missing or altered)."""
    runtime_path = version.runtime_file.path if version.runtime_file else None
    return get_model(
        model_spec_of(version),
        version.weights.path,
        device=inference_device(),
        expected_sha256=version.sha256,
        threads=model_threads(version),
        runtime=version.runtime,
        runtime_path=runtime_path,
        runtime_sha256=version.runtime_sha256 or None,
    )


def predict_images(version: ModelVersion, images: Sequence[Image.Image]) -> list[PredictionResult]:
    return loaded_model_of(version).predict(images)


def models_warm() -> list[str]:
    """Load every actively deployed version and run it once on a blank image.

    Called when a worker process starts, so the first batch of cases does not pay for
    loading weights and the first forward pass. A version that fails to load is logged
    and left: its cases go to review with the reason when they arrive, as before.
    Returns the tags of the versions now ready in this process.
    """
    ready = []
    versions = {
        deployment.model_version_id: deployment.model_version
        for deployment in Deployment.objects.filter(active=True).select_related("model_version")
    }
    for version in versions.values():
        try:
            model = loaded_model_of(version)
            model.predict([Image.new("RGB", (version.input_size, version.input_size))])
        except Exception:  # best effort: its cases report the error
            logger.warning("could not warm model %s", version.tag, exc_info=True)
            continue
        ready.append(version.tag)
    return ready


def predict_images_with_embeddings(
    version: ModelVersion, images: Sequence[Image.Image]
) -> tuple[list[PredictionResult], list[list[float]] | None]:
    """``predict_images`` plus each image's 32-d projected embedding (None if the
    architecture has no final linear layer), from the same forward pass."""
    results, embeddings = loaded_model_of(version).predict_with_embeddings(images)
    return results, (embeddings.tolist() if embeddings is not None else None)
