"""Measured demo cases for the drift simulations: generated once per test session.

Each pool holds the monitoring measurements of demo images (``inference.synthetic``,
128 x 128, saved as PNG like the demo stream) and the demo model's output on them:
confidence, margin, entropy, top label, whether it was right, the 32-d embedding.
The simulations draw streams from these pools with replacement, so a stream is
stationary by construction within a pool and shifts when it switches pools.
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference.loader import load_model
from inference.measure import image_measurements, output_measurements
from inference.spec import ModelSpec
from inference.synthetic import generate_dataset

ASSETS = Path(__file__).resolve().parents[2] / "inference" / "assets"
METRICS = ("brightness", "contrast", "sharpness", "saturation", "clipped", "file_size")
OUTPUTS = ("confidence", "margin", "entropy")
DRIFT_MODES = ("lighting", "new_defect_look", "blur", "new_surface")
_OFFSETS = {None: 0, "lighting": 1, "new_defect_look": 2, "blur": 3, "new_surface": 4}


@dataclass(frozen=True)
class Pool:
    values: dict[str, np.ndarray]
    labels: np.ndarray
    truth: np.ndarray
    correct: np.ndarray
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Pool:
        return Pool(
            values={name: column[index] for name, column in self.values.items()},
            labels=self.labels[index],
            truth=self.truth[index],
            correct=self.correct[index],
            embeddings=self.embeddings[index],
        )


@functools.cache
def demo_model():
    spec = ModelSpec.from_dict(json.loads((ASSETS / "demo_model.json").read_text()))
    return load_model(spec, ASSETS / "demo_model.pt")


@functools.cache
def pool(drift: str | None, n: int = 400, seed: int = 11) -> Pool:
    torch.set_num_threads(1)
    images, truth, sizes = [], [], []
    for image, label in generate_dataset(n, seed=seed + _OFFSETS[drift], drift=drift):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append(image)
        truth.append(label)
        sizes.append(len(buffer.getvalue()))
    results, embeddings = demo_model().predict_with_embeddings(images)
    assert embeddings is not None
    values: dict[str, list[float]] = {name: [] for name in METRICS + OUTPUTS}
    for image, size, result in zip(images, sizes, results, strict=True):
        measured = image_measurements(image, file_size=size, image_format="PNG")
        output = output_measurements(result.scores_dict())
        for name in METRICS:
            values[name].append(float(getattr(measured, name)))
        for name in OUTPUTS:
            values[name].append(float(getattr(output, name)))
    return Pool(
        values={name: np.array(column) for name, column in values.items()},
        labels=np.array([result.label for result in results]),
        truth=np.array(truth),
        correct=np.array([r.label == t for r, t in zip(results, truth, strict=True)]),
        embeddings=np.asarray(embeddings, dtype=np.float64),
    )
