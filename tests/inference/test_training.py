from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.architectures import build_model
from inference.loader import load_model
from inference.spec import ModelSpec
from inference.synthetic import generate_dataset
from inference.training import (
    EvalResult,
    TrainingCancelled,
    evaluate,
    save_weights,
    train_model,
)

BRIGHTNESS_LABELS = ("dark", "bright")


@pytest.fixture(scope="module")
def synthetic_images() -> tuple[list[Image.Image], list[str]]:
    data = generate_dataset(60, seed=1, size=48)
    return [image for image, _ in data], [label for _, label in data]


def _brightness_images(count: int, seed: int) -> tuple[list[Image.Image], list[str]]:
    """A task a few dozen steps can learn: noisy images, darker or brighter than mid-grey.

    It checks that the training loop learns at all; the synthetic defect task
    needs minutes, not the seconds a unit test may take.
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for index in range(count):
        label = BRIGHTNESS_LABELS[index % 2]
        level = rng.uniform(40, 110) if label == "dark" else rng.uniform(145, 215)
        pixels = np.clip(rng.normal(level, 35, (24, 24, 3)), 0, 255).astype(np.uint8)
        images.append(Image.fromarray(pixels))
        labels.append(label)
    return images, labels


def _log_loss(result_scores: list[dict[str, float]], labels: list[str]) -> float:
    return -float(
        np.mean([math.log(max(s[y], 1e-12)) for s, y in zip(result_scores, labels, strict=True)])
    )


def test_same_seed_gives_identical_history_and_weights(
    tiny_spec: ModelSpec, synthetic_images
) -> None:
    images, labels = synthetic_images
    runs = [
        train_model(tiny_spec, images, labels, epochs=2, seed=7, batch_size=16) for _ in range(2)
    ]
    assert runs[0].history == runs[1].history
    assert runs[0].state_dict.keys() == runs[1].state_dict.keys()
    for key, tensor in runs[0].state_dict.items():
        assert torch.equal(tensor, runs[1].state_dict[key]), key
    other_seed = train_model(tiny_spec, images, labels, epochs=2, seed=8, batch_size=16)
    assert other_seed.history != runs[0].history


def test_training_restores_process_wide_torch_settings(
    tiny_spec: ModelSpec, synthetic_images
) -> None:
    images, labels = synthetic_images
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    train_model(tiny_spec, images[:20], labels[:20], epochs=1, seed=0, num_threads=1)
    assert torch.rand(1) == expected_next
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_short_training_beats_an_untrained_model_on_held_out_data() -> None:
    spec = ModelSpec(
        "mobilenet_v3_small", BRIGHTNESS_LABELS, 24, arch_kwargs=(("width_mult", 0.5),)
    )
    train_images, train_labels = _brightness_images(64, seed=0)
    test_images, test_labels = _brightness_images(40, seed=1)
    result = train_model(spec, train_images, train_labels, epochs=6, seed=0, batch_size=16, lr=1e-2)
    trained = build_model(spec)
    trained.load_state_dict(result.state_dict)
    torch.manual_seed(0)
    untrained = build_model(spec)
    trained_eval = evaluate(trained, test_images, test_labels, spec=spec)
    untrained_eval = evaluate(untrained, test_images, test_labels, spec=spec)
    assert trained_eval.accuracy >= 0.9
    assert trained_eval.accuracy > untrained_eval.accuracy


def test_progress_is_reported_every_epoch_with_validation_accuracy(
    tiny_spec: ModelSpec, synthetic_images
) -> None:
    images, labels = synthetic_images
    reports: list[tuple[int, float, float | None]] = []
    result = train_model(
        tiny_spec,
        images[:40],
        labels[:40],
        epochs=2,
        seed=0,
        val_images=images[40:],
        val_labels=labels[40:],
        progress=lambda epoch, loss, accuracy: reports.append((epoch, loss, accuracy)),
    )
    assert [epoch for epoch, _, _ in reports] == [1, 2]
    assert all(
        loss > 0 and accuracy is not None and 0 <= accuracy <= 1 for _, loss, accuracy in reports
    )
    assert [(r.epoch, r.loss, r.val_accuracy) for r in result.history] == reports
    assert result.hyperparameters["n_val"] == 20
    assert result.seed == 0


def test_cancelling_stops_training(tiny_spec: ModelSpec, synthetic_images) -> None:
    images, labels = synthetic_images
    polls: list[int] = []

    def cancel_on_third_poll() -> bool:
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(TrainingCancelled):
        train_model(
            tiny_spec,
            images,
            labels,
            epochs=5,
            seed=0,
            batch_size=8,
            should_cancel=cancel_on_third_poll,
        )
    assert len(polls) == 3


def test_bad_training_input_is_refused(tiny_spec: ModelSpec, synthetic_images) -> None:
    images, labels = synthetic_images
    with pytest.raises(ValueError, match="labels"):
        train_model(tiny_spec, images[:3], labels[:2], epochs=1, seed=0)
    with pytest.raises(ValueError, match="not in the model's labels"):
        train_model(tiny_spec, images[:2], ["ok", "dent"], epochs=1, seed=0)
    with pytest.raises(ValueError, match="epochs"):
        train_model(tiny_spec, images, labels, epochs=0, seed=0)


def test_warm_start_needs_matching_weights(tiny_spec: ModelSpec, synthetic_images) -> None:
    images, labels = synthetic_images
    first = train_model(tiny_spec, images[:20], labels[:20], epochs=1, seed=0)
    second = train_model(
        tiny_spec, images[:20], labels[:20], epochs=1, seed=0, init_state_dict=first.state_dict
    )
    assert second.hyperparameters["warm_start"] is True
    resnet = build_model(ModelSpec("resnet18", tiny_spec.labels, 32)).state_dict()
    with pytest.raises(ValueError, match="init_state_dict does not fit"):
        train_model(tiny_spec, images[:20], labels[:20], epochs=1, seed=0, init_state_dict=resnet)


def test_saved_weights_load_back_and_evaluate_the_same(
    tiny_spec: ModelSpec, synthetic_images, tmp_path: Path
) -> None:
    images, labels = synthetic_images
    result = train_model(tiny_spec, images[:30], labels[:30], epochs=1, seed=0)
    path = tmp_path / "trained.pt"
    sha256 = save_weights(result.state_dict, path)
    loaded = load_model(tiny_spec, path, expected_sha256=sha256)
    in_memory = build_model(tiny_spec)
    in_memory.load_state_dict(result.state_dict)
    assert evaluate(loaded, images[30:], labels[30:]) == evaluate(
        in_memory, images[30:], labels[30:], spec=tiny_spec
    )
    assert not list(tmp_path.glob("*.partial"))


def test_evaluate_counts_add_up(tiny_spec: ModelSpec, saved_weights, synthetic_images) -> None:
    images, labels = synthetic_images
    path, _ = saved_weights
    result: EvalResult = evaluate(load_model(tiny_spec, path), images, labels)
    assert result.n == len(images)
    assert sum(map(sum, result.confusion)) == len(images)
    for index, counts in enumerate(result.per_class):
        assert counts.label == tiny_spec.labels[index]
        assert counts.total == labels.count(counts.label) == sum(result.confusion[index])
        assert counts.correct == result.confusion[index][index]
    correct = sum(result.confusion[i][i] for i in range(len(tiny_spec.labels)))
    assert result.accuracy == correct / len(images)
    assert sum(is_right for _, is_right in result.confidences) == correct
    assert set(result.per_class_accuracy()) == set(tiny_spec.labels)


def test_evaluate_refuses_a_bare_module_without_spec(
    tiny_spec: ModelSpec, synthetic_images
) -> None:
    images, labels = synthetic_images
    with pytest.raises(ValueError, match="spec"):
        evaluate(build_model(tiny_spec), images, labels)


def test_equal_weights_give_equal_files_and_checksums(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    torch.manual_seed(3)
    state_dict = build_model(tiny_spec).state_dict()
    first = save_weights(state_dict, tmp_path / "a" / "model.pt")
    second = save_weights(state_dict, tmp_path / "b" / "model.pt")
    assert first == second


def test_a_duplicate_group_never_straddles_a_split() -> None:
    from inference.retrain import stratified_split

    items = [(f"case-{i:03d}", "ok" if i % 3 else "crack") for i in range(120)]
    # every fourth case repeats the image of the case before it
    groups = {key: items[i - 1][0] for i, (key, _) in enumerate(items) if i % 4 == 1}
    for seed in range(25):
        split = stratified_split(items, test_share=0.2, val_share=0.1, seed=seed, groups=groups)
        side = {key: part for part in ("train", "val", "test") for key in getattr(split, part)}
        assert len(side) == len(items)
        for key, first in groups.items():
            assert side[key] == side[first], (seed, key, first)
    without = stratified_split(items, test_share=0.2, val_share=0.1, seed=3)
    assert without == stratified_split(items, test_share=0.2, val_share=0.1, seed=3, groups={})
