"""Per-case monitoring measurements: what each number means, on images whose answer is known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from inference.loader import load_model
from inference.measure import (
    EMBEDDING_DIM,
    MAX_SIDE,
    image_measurements,
    metadata_keys_check,
    output_measurements,
    project_embeddings,
    projection_matrix,
)
from inference.spec import ModelSpec
from inference.synthetic import generate_image


def flat(value: int, size: tuple[int, int] = (40, 30), colour: bool = False) -> Image.Image:
    fill = (value, value // 2, 0) if colour else (value, value, value)
    return Image.new("RGB", size, fill)


def test_refuses_a_negative_file_size() -> None:
    with pytest.raises(ValueError, match="file_size"):
        image_measurements(flat(10), file_size=-1, image_format="png")


def test_a_flat_grey_image_has_its_brightness_and_no_contrast_sharpness_or_saturation() -> None:
    m = image_measurements(flat(100), file_size=123, image_format="png")
    assert (m.width, m.height, m.file_size, m.image_format) == (40, 30, 123, "PNG")
    assert m.brightness == pytest.approx(100, abs=0.01)
    assert m.contrast == pytest.approx(0, abs=1e-4)
    assert m.sharpness == pytest.approx(0, abs=1e-4)
    assert m.saturation == 0
    assert m.clipped == 0


def test_black_and_white_pixels_count_as_clipped() -> None:
    pixels = np.full((10, 10, 3), 128, np.uint8)
    pixels[:2] = 0
    pixels[2:5] = 255
    m = image_measurements(Image.fromarray(pixels), file_size=1, image_format="PNG")
    assert m.clipped == pytest.approx(0.5)
    assert m.contrast > 50


def test_a_saturated_colour_has_saturation_one() -> None:
    assert image_measurements(
        flat(200, colour=True), file_size=1, image_format="PNG"
    ).saturation == (pytest.approx(1.0))


def test_blurring_lowers_sharpness_and_dimming_lowers_brightness() -> None:
    image = generate_image("scratch", np.random.default_rng(3))
    sharp = image_measurements(image, file_size=1, image_format="PNG")
    blurred = image_measurements(
        image.filter(ImageFilter.GaussianBlur(2)), file_size=1, image_format="PNG"
    )
    dim = image_measurements(image.point(lambda v: v // 2), file_size=1, image_format="PNG")
    assert blurred.sharpness < sharp.sharpness / 3
    assert dim.brightness == pytest.approx(sharp.brightness / 2, rel=0.05)


def test_a_large_image_is_subsampled_but_reports_its_own_size() -> None:
    big = flat(90, size=(MAX_SIDE * 8, MAX_SIDE * 3))
    m = image_measurements(big, file_size=5, image_format="JPEG")
    assert (m.width, m.height) == (MAX_SIDE * 8, MAX_SIDE * 3)
    assert m.brightness == pytest.approx(90, abs=0.01)


def test_grey_and_palette_modes_are_measured_as_rgb() -> None:
    grey = image_measurements(flat(60).convert("L"), file_size=1, image_format="PNG")
    assert grey.brightness == pytest.approx(60, abs=0.01)


@pytest.mark.parametrize("scores", [{}, {"a": float("nan")}, {"a": -0.1, "b": 1.1}, {"a": 0.0}])
def test_output_measurements_refuse_what_is_not_a_distribution(scores) -> None:
    with pytest.raises(ValueError):
        output_measurements(scores)


def test_output_measurements_of_a_sure_and_an_unsure_answer() -> None:
    sure = output_measurements({"ok": 1.0, "crack": 0.0, "stain": 0.0})
    assert (sure.label, sure.confidence, sure.margin, sure.entropy) == ("ok", 1.0, 1.0, 0.0)
    unsure = output_measurements({"ok": 0.25, "crack": 0.25, "stain": 0.25, "dent": 0.25})
    assert unsure.label == "ok"  # the first label wins a tie, as in prediction
    assert unsure.margin == 0
    assert unsure.entropy == pytest.approx(1.0)
    middle = output_measurements({"ok": 0.7, "crack": 0.2, "stain": 0.1})
    expected = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    assert middle.margin == pytest.approx(0.5)
    assert middle.entropy == pytest.approx(expected)


def test_metadata_keys_present_and_missing() -> None:
    assert metadata_keys_check({"line": 1, "camera": "a"}, ["camera", "shift"]) == (
        ["camera", "line"],
        ["shift"],
    )


def test_projection_is_fixed_per_shape_and_keeps_distances_roughly() -> None:
    assert np.array_equal(projection_matrix(100), projection_matrix(100))
    assert not np.array_equal(projection_matrix(100), projection_matrix(101)[:100])
    rng = np.random.default_rng(0)
    points = rng.standard_normal((20, 512)).astype(np.float32)
    projected = project_embeddings(points)
    assert projected.shape == (20, EMBEDDING_DIM)
    original = np.linalg.norm(points[1:] - points[0], axis=1)
    reduced = np.linalg.norm(projected[1:] - projected[0], axis=1)
    ratio = reduced / original
    assert 0.5 < float(np.median(ratio)) < 1.5


def test_project_embeddings_refuses_a_vector() -> None:
    with pytest.raises(ValueError, match="shape"):
        project_embeddings(np.zeros(5))


def test_predict_with_embeddings_gives_the_same_predictions_and_one_embedding_each(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], rgb_image_factory
) -> None:
    path, sha256 = saved_weights
    model = load_model(tiny_spec, path, expected_sha256=sha256)
    images = [rgb_image_factory(seed) for seed in range(3)]
    results, embeddings = model.predict_with_embeddings(images)
    assert results == model.predict(images)
    assert embeddings is not None and embeddings.shape == (3, EMBEDDING_DIM)
    assert np.all(np.isfinite(embeddings))
    assert not np.allclose(embeddings[0], embeddings[1])
    # The hook is removed afterwards: a plain predict does not capture anything.
    assert model.predict(images) == results
