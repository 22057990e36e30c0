from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from inference.synthetic import DEMO_LABELS, DRIFTS, generate_dataset, generate_image


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def test_same_seed_same_images_and_labels() -> None:
    first = generate_dataset(12, seed=5, size=64)
    second = generate_dataset(12, seed=5, size=64)
    assert [label for _, label in first] == [label for _, label in second]
    for (a, _), (b, _) in zip(first, second, strict=True):
        assert np.array_equal(_pixels(a), _pixels(b))


def test_different_seeds_differ() -> None:
    first = generate_dataset(6, seed=1, size=64)
    second = generate_dataset(6, seed=2, size=64)
    assert any(
        not np.array_equal(_pixels(a), _pixels(b))
        for (a, _), (b, _) in zip(first, second, strict=True)
    )


def test_every_label_is_produced_with_the_default_mix() -> None:
    counts = Counter(label for _, label in generate_dataset(40, seed=0, size=48))
    assert set(counts) == set(DEMO_LABELS)
    assert counts == {"ok": 22, "scratch": 6, "crack": 6, "stain": 6}


def test_class_weights_are_respected() -> None:
    data = generate_dataset(10, seed=0, size=48, class_weights={"ok": 1, "crack": 1})
    assert Counter(label for _, label in data) == {"ok": 5, "crack": 5}


@pytest.mark.parametrize("label", DEMO_LABELS)
@pytest.mark.parametrize("drift", [None, *DRIFTS])
def test_images_are_rgb_of_the_requested_size(label: str, drift: str | None) -> None:
    image = generate_image(label, np.random.default_rng(0), size=72, drift=drift)
    assert image.mode == "RGB"
    assert image.size == (72, 72)


def test_unknown_label_or_drift_is_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown label"):
        generate_image("dent", rng)
    with pytest.raises(ValueError, match="unknown drift"):
        generate_image("ok", rng, drift="earthquake")
    with pytest.raises(ValueError, match="unknown labels"):
        generate_dataset(3, seed=0, class_weights={"dent": 1.0})


def _mean_brightness_and_warmth(drift: str | None) -> tuple[float, float]:
    pixels = np.stack(
        [_pixels(image) for image, _ in generate_dataset(30, seed=3, size=64, drift=drift)]
    )
    return float(pixels.mean()), float((pixels[..., 0] - pixels[..., 2]).mean())


def test_lighting_drift_darkens_and_warms_the_images() -> None:
    normal_brightness, normal_warmth = _mean_brightness_and_warmth(None)
    drifted_brightness, drifted_warmth = _mean_brightness_and_warmth("lighting")
    assert drifted_brightness < 0.8 * normal_brightness
    assert drifted_warmth > normal_warmth + 5


def test_blur_drift_removes_fine_detail() -> None:
    def sharpness(drift: str | None) -> float:
        images = [
            _pixels(image).mean(axis=2)
            for image, _ in generate_dataset(20, seed=4, size=64, drift=drift)
        ]
        return float(np.mean([np.abs(np.diff(image, axis=0)).mean() for image in images]))

    assert sharpness("blur") < 0.7 * sharpness(None)
