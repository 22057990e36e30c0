"""Fixtures for the ML core's unit tests: tiny specs and saved weights files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.architectures import build_model
from inference.loader import clear_cache
from inference.spec import ModelSpec
from inference.training import save_weights

TINY_LABELS = ("ok", "scratch", "crack", "stain")


@pytest.fixture
def tiny_spec() -> ModelSpec:
    """A small, fast model: MobileNetV3-Small at half width on 32-pixel inputs."""
    return ModelSpec(
        architecture="mobilenet_v3_small",
        labels=TINY_LABELS,
        input_size=32,
        arch_kwargs=(("width_mult", 0.5),),
    )


@pytest.fixture
def saved_weights(tiny_spec: ModelSpec, tmp_path: Path) -> tuple[Path, str]:
    """A randomly initialised state dict for ``tiny_spec`` on disk, and its SHA-256."""
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    sha256 = save_weights(build_model(tiny_spec).state_dict(), path)
    return path, sha256


@pytest.fixture(autouse=True, scope="session")
def one_cpu_thread() -> Iterator[None]:
    """One torch thread keeps the timings sane on CPUs shared with other test runs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def empty_model_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def rgb_image_factory() -> Callable[[int], Image.Image]:
    """Deterministic noise images of assorted sizes and modes (the predictor converts to RGB)."""

    def make(seed: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Image.Image:
        pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
        return Image.fromarray(pixels).convert(mode)

    return make
