from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from inference.loader import load_model, preprocess
from inference.spec import ModelSpec, PredictionResult


@pytest.fixture
def loaded(tiny_spec: ModelSpec, saved_weights: tuple[Path, str]):
    path, sha256 = saved_weights
    return load_model(tiny_spec, path, expected_sha256=sha256)


def test_scores_are_a_probability_distribution_in_label_order(loaded, rgb_image_factory) -> None:
    [result] = loaded.predict([rgb_image_factory(1)])
    assert isinstance(result, PredictionResult)
    assert tuple(label for label, _ in result.scores) == loaded.spec.labels
    assert math.isclose(sum(score for _, score in result.scores), 1.0, abs_tol=1e-5)
    assert all(0.0 <= score <= 1.0 for _, score in result.scores)


def test_top_label_and_confidence_are_the_maximum(loaded, rgb_image_factory) -> None:
    [result] = loaded.predict([rgb_image_factory(2)])
    best_label = max(result.scores, key=lambda pair: pair[1])[0]
    assert result.label == best_label
    assert result.confidence == result.scores_dict()[best_label]


def test_a_batch_of_n_gives_n_results_in_input_order(loaded, rgb_image_factory) -> None:
    images = [rgb_image_factory(seed) for seed in range(7)]
    batched = loaded.predict(images, batch_size=3)
    one_by_one = [loaded.predict([image])[0] for image in images]
    assert len(batched) == 7
    for together, alone in zip(batched, one_by_one, strict=True):
        assert together.label == alone.label
        for (_, a), (_, b) in zip(together.scores, alone.scores, strict=True):
            assert a == pytest.approx(b, abs=1e-5)


def test_an_empty_batch_gives_no_results(loaded) -> None:
    assert loaded.predict([]) == []


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_any_image_mode_and_size_is_accepted(loaded, rgb_image_factory, mode: str) -> None:
    image = rgb_image_factory(3, size=(57, 23), mode=mode)
    assert len(loaded.predict([image])) == 1


def test_results_are_frozen_plain_python(loaded, rgb_image_factory) -> None:
    [result] = loaded.predict([rgb_image_factory(4)])
    with pytest.raises(AttributeError):
        result.label = "other"  # type: ignore[misc]
    assert all(type(score) is float for _, score in result.scores)
    hash(result)


def test_preprocess_resizes_and_normalises_with_the_spec(tiny_spec: ModelSpec) -> None:
    white = Image.new("RGB", (100, 50), (255, 255, 255))
    tensor = preprocess(white, tiny_spec)
    assert tuple(tensor.shape) == (3, tiny_spec.input_size, tiny_spec.input_size)
    for channel, (mean, std) in enumerate(zip(tiny_spec.mean, tiny_spec.std, strict=True)):
        assert tensor[channel].mean().item() == pytest.approx((1.0 - mean) / std, abs=1e-5)


def test_from_probabilities_breaks_ties_by_label_order() -> None:
    result = PredictionResult.from_probabilities(("a", "b", "c"), [0.4, 0.4, 0.2])
    assert (result.label, result.confidence) == ("a", 0.4)
    assert result.scores_dict() == {"a": 0.4, "b": 0.4, "c": 0.2}
