"""Cheap per-case measurements for monitoring: the image, the model's output, its embedding.

Pure numpy (and torch for the embedding hook), no Django. The worker calls these once
per case on the image it already decoded, so their cost is part of every case's
processing: ``bench/measure_bench.py`` prints it (well under 1 ms on the demo images).

Image measurements are taken on the RGB image, subsampled by a stride so that at most
``MAX_SIDE`` pixels per side are read: a 4000 x 3000 photograph costs no more than a
256 x 256 one, and the statistics (means, spreads, shares) barely move under a regular
subsample. Width, height, file size and format are the original's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

MAX_SIDE = 256
EMBEDDING_DIM = 32
# A pixel is clipped when its luminance is at (or within this of) black or white.
CLIP_MARGIN = 2

# Rec. 601 luma weights: brightness as people perceive it, not the mean of R, G and B.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# The input metrics the drift checks compare, in display order.
INPUT_METRICS: tuple[str, ...] = (
    "brightness",
    "contrast",
    "sharpness",
    "saturation",
    "clipped",
    "width",
    "height",
    "file_size",
)
# The output metrics compared against the reference (the class mix is compared apart).
OUTPUT_METRICS: tuple[str, ...] = ("confidence", "margin", "entropy")


@dataclass(frozen=True)
class ImageMeasurements:
    """What one image looks like, in numbers comparable across cases.

    ``brightness`` is mean luma in [0, 255]; ``contrast`` its standard deviation;
    ``sharpness`` the variance of the 4-neighbour Laplacian of luma (low: blurred);
    ``saturation`` the mean HSV saturation in [0, 1]; ``clipped`` the share of pixels
    at black or white.
    """

    width: int
    height: int
    file_size: int
    image_format: str
    brightness: float
    contrast: float
    sharpness: float
    saturation: float
    clipped: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _stride(width: int, height: int) -> int:
    return max(1, math.ceil(max(width, height) / MAX_SIDE))


def image_measurements(
    image: Image.Image, *, file_size: int, image_format: str
) -> ImageMeasurements:
    """One pass over (a regular subsample of) the decoded image."""
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ValueError(f"an image needs pixels, got {width}x{height}")
    if file_size < 0:
        raise ValueError(f"file_size must be non-negative, got {file_size}")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    step = _stride(width, height)
    pixels = np.asarray(rgb, dtype=np.uint8)[::step, ::step]
    as_float = pixels.astype(np.float32)
    luma = as_float @ _LUMA
    brightness = float(luma.mean())
    contrast = float(luma.std())
    if luma.shape[0] >= 3 and luma.shape[1] >= 3:
        laplacian = (
            luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]
        ) - 4.0 * luma[1:-1, 1:-1]
        sharpness = float(laplacian.var())
    else:
        sharpness = 0.0
    # Elementwise over the channels: numpy's reduction over the last axis is ~20x slower.
    red, green, blue = as_float[..., 0], as_float[..., 1], as_float[..., 2]
    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    saturation = float(np.mean((high - low) / np.maximum(high, 1.0)))
    clipped = float(np.mean((luma <= CLIP_MARGIN) | (luma >= 255 - CLIP_MARGIN)))
    return ImageMeasurements(
        width=int(width),
        height=int(height),
        file_size=int(file_size),
        image_format=str(image_format or "").upper(),
        brightness=brightness,
        contrast=contrast,
        sharpness=sharpness,
        saturation=saturation,
        clipped=clipped,
    )


@dataclass(frozen=True)
class OutputMeasurements:
    """The model's answer summarised: top label and confidence, the margin to the
    runner-up (small: torn between two labels), and the entropy of the scores in nats
    (high: unsure), normalised by log(number of labels) into [0, 1]."""

    label: str
    confidence: float
    margin: float
    entropy: float


def output_measurements(scores: Mapping[str, float]) -> OutputMeasurements:
    """From a label -> probability mapping (the first label wins a tie, as in prediction)."""
    if not scores:
        raise ValueError("scores must name at least one label")
    values = np.array([float(value) for value in scores.values()], dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("scores must be finite, non-negative probabilities")
    total = values.sum()
    if total <= 0:
        raise ValueError("scores must not all be zero")
    probabilities = values / total
    labels = list(scores)
    top = int(np.argmax(probabilities))
    ordered = np.sort(probabilities)[::-1]
    margin = float(ordered[0] - ordered[1]) if ordered.size > 1 else 1.0
    positive = probabilities[probabilities > 0]
    entropy = float(-(positive * np.log(positive)).sum())
    if probabilities.size > 1:
        entropy /= math.log(probabilities.size)
    return OutputMeasurements(
        label=labels[top],
        confidence=float(probabilities[top]),
        margin=margin,
        entropy=min(max(entropy, 0.0), 1.0),
    )


def metadata_keys_check(
    metadata: Mapping[str, object], expected: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(present, missing): the metadata's keys, sorted, and the expected keys it lacks."""
    present = sorted(str(key) for key in metadata)
    missing = sorted(set(expected) - set(present))
    return present, missing


def projection_matrix(features: int, dim: int = EMBEDDING_DIM, seed: int = 0) -> np.ndarray:
    """A fixed Gaussian random projection ``(features, dim)`` (Johnson-Lindenstrauss).

    Seeded by the feature count, so every process projects a model's embeddings the
    same way and distances between projected embeddings approximate the originals.
    """
    if features <= 0 or dim <= 0:
        raise ValueError(f"features and dim must be positive, got {features} and {dim}")
    rng = np.random.default_rng([seed, features, dim])
    return (rng.standard_normal((features, dim)) / math.sqrt(dim)).astype(np.float32)


_projections: dict[tuple[int, int], np.ndarray] = {}


def project_embeddings(
    features: npt.ArrayLike, dim: int = EMBEDDING_DIM
) -> npt.NDArray[np.float32]:
    """``(n, features)`` penultimate-layer activations to ``(n, dim)`` projections."""
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"expected an (n, features) array, got shape {array.shape}")
    key = (array.shape[1], dim)
    matrix = _projections.get(key)
    if matrix is None:
        matrix = _projections[key] = projection_matrix(array.shape[1], dim)
    return np.asarray(array @ matrix, dtype=np.float32)


def rounded(values: Sequence[float], digits: int = 4) -> list[float]:
    """A compact, JSON-friendly copy of a vector."""
    return [round(float(value), digits) for value in values]
