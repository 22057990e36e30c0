"""Frozen value types that cross the boundary of the ML core.

Every type here is plain Python: no tensors, no torch modules. A ``ModelSpec``
is hashable, so it can key the per-process model cache.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model and feed it images, except its weights.

    Invariants (checked on construction): at least one label, labels unique and
    non-empty, ``input_size`` positive, ``mean``/``std`` have three channels and
    every ``std`` is positive, ``arch_kwargs`` is a tuple of (name, value) pairs
    with unique names, so the spec stays hashable.
    """

    architecture: str
    labels: tuple[str, ...]
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    arch_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.architecture:
            raise ValueError("architecture must be a non-empty string")
        if not self.labels:
            raise ValueError("a model needs at least one label")
        if any(not label for label in self.labels):
            raise ValueError("labels must be non-empty strings")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be unique, got {self.labels!r}")
        if self.input_size <= 0:
            raise ValueError(f"input_size must be positive, got {self.input_size}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need exactly three (RGB) values")
        if any(value <= 0 for value in self.std):
            raise ValueError(f"std values must be positive, got {self.std!r}")
        names = [name for name, _ in self.arch_kwargs]
        if len(set(names)) != len(names):
            raise ValueError(f"arch_kwargs names must be unique, got {names!r}")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def arch_kwargs_dict(self) -> dict[str, Any]:
        return dict(self.arch_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form; ``ModelSpec.from_dict`` inverts it."""
        return {
            "architecture": self.architecture,
            "labels": list(self.labels),
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "arch_kwargs": self.arch_kwargs_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Build a spec from ``to_dict`` output (lists become tuples, kwargs sorted by name)."""
        arch_kwargs = data.get("arch_kwargs") or {}
        return cls(
            architecture=str(data["architecture"]),
            labels=tuple(str(label) for label in data["labels"]),
            input_size=int(data["input_size"]),
            mean=_three_floats(data.get("mean", IMAGENET_MEAN)),
            std=_three_floats(data.get("std", IMAGENET_STD)),
            arch_kwargs=tuple(sorted(dict(arch_kwargs).items())),
        )


def _three_floats(values: Any) -> tuple[float, float, float]:
    first, second, third = (float(value) for value in values)
    return (first, second, third)


@dataclass(frozen=True)
class PredictionResult:
    """What one model said about one image.

    Invariants: ``scores`` lists every label of the model once, in the model's
    label order, each a softmax probability (they sum to 1 up to rounding);
    ``label`` is the first label with the highest score and ``confidence`` is
    that score.
    """

    scores: tuple[tuple[str, float], ...]
    label: str
    confidence: float

    def scores_dict(self) -> dict[str, float]:
        return dict(self.scores)

    @classmethod
    def from_probabilities(
        cls, labels: tuple[str, ...], probabilities: list[float]
    ) -> PredictionResult:
        """Pair each label with its probability and pick the top one (first wins a tie)."""
        if len(labels) != len(probabilities):
            raise ValueError(f"{len(probabilities)} probabilities for {len(labels)} labels")
        if any(not math.isfinite(value) for value in probabilities):
            raise ValueError("probabilities must be finite")
        scores = tuple(zip(labels, (float(p) for p in probabilities), strict=True))
        top_label, top_score = max(scores, key=lambda pair: pair[1])
        return cls(scores=scores, label=top_label, confidence=top_score)
