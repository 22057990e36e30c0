"""A small hyper-parameter sweep: trials from seeds and learning rates, the best kept on
validation figures alone, and the test split measured once, after the choice."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import inference.retrain as retrain_module
import inference.training as training_module
from inference.retrain import retrain
from inference.spec import ModelSpec
from inference.sweep import MAX_TRIALS, Sweep, Trial, TrialValidation, choose_trial

LABELS = ("ok", "stain")
# ResNet-18 at 16 px learns the blob in two epochs (as in tests/modelops/test_retraining.py).
SPEC = ModelSpec(architecture="resnet18", labels=LABELS, input_size=16)


def blob(label: str, seed: int, size: int = 24) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.normal(150, 20, (size, size, 3))
    if label == "stain":
        cx, cy = rng.integers(6, size - 6, 2)
        yy, xx = np.mgrid[:size, :size]
        pixels[(xx - cx) ** 2 + (yy - cy) ** 2 < 25] = [90, 50, 30]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def part(count: int, first_seed: int) -> tuple[list[Image.Image], list[str]]:
    labels = [LABELS[i % 2] for i in range(count)]
    return [blob(label, first_seed + i) for i, label in enumerate(labels)], labels


def figure(seed: int, correct: int, n: int, lr: float = 0.003) -> TrialValidation:
    return TrialValidation(trial=Trial(seed=seed, lr=lr), val_correct=correct, val_n=n)


# --- Which trials -----------------------------------------------------------------------


def test_trials_are_every_seed_with_every_learning_rate_in_the_order_given() -> None:
    sweep = Sweep.from_dict({"seeds": [3, 1], "lrs": [0.01, 0.001]})
    assert sweep.trials(seed=9, lr=0.5) == (
        Trial(3, 0.01),
        Trial(3, 0.001),
        Trial(1, 0.01),
        Trial(1, 0.001),
    )
    only_seeds = Sweep.from_dict({"seeds": [1, 2, 3]}, lr=0.003)
    assert only_seeds.trials(seed=9, lr=0.003) == tuple(Trial(s, 0.003) for s in (1, 2, 3))
    only_rates = Sweep.from_dict({"lrs": [0.01, 0.001]}, seed=4)
    assert only_rates.trials(seed=4, lr=0.5) == (Trial(4, 0.01), Trial(4, 0.001))


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ([1, 2], "must be an object"),
        ({"seed": [1, 2]}, "unknown keys ['seed']"),
        ({"seeds": "1,2"}, "sweep.seeds: must be a list"),
        ({"seeds": [1, -2]}, "sweep.seeds: each a whole number"),
        ({"seeds": [1, 2.5]}, "sweep.seeds: each a whole number"),
        ({"seeds": [True, 2]}, "sweep.seeds: each a whole number"),
        ({"seeds": [1, 1]}, "sweep.seeds: each value once"),
        ({"lrs": [0.01, 0]}, "sweep.lrs: each a number above 0"),
        ({"lrs": [0.01, 2]}, "sweep.lrs: each a number above 0"),
        ({"lrs": [0.01, "fast"]}, "sweep.lrs: each a number above 0"),
        ({"lrs": [0.01, float("nan")]}, "sweep.lrs: each a number above 0"),
        ({"seeds": [1]}, "at least 2 trials"),
        ({}, "at least 2 trials"),
        ({"seeds": [1, 2, 3, 4], "lrs": [0.1, 0.01]}, f"at most {MAX_TRIALS} trials"),
    ],
)
def test_a_bad_sweep_is_refused_naming_what_is_wrong(data: Any, names: str) -> None:
    with pytest.raises(ValueError, match="sweep") as refused:
        Sweep.from_dict(data)
    assert names in str(refused.value)


# --- Which trial is kept ----------------------------------------------------------------


def test_the_best_validation_accuracy_wins_and_a_tie_goes_to_the_first_listed() -> None:
    assert choose_trial([figure(1, 7, 10), figure(2, 9, 10), figure(3, 8, 10)]) == 1
    assert choose_trial([figure(1, 9, 10), figure(2, 9, 10)]) == 0
    # Compared exactly as fractions: 3/4 beats 2/3 whatever the sizes.
    assert choose_trial([figure(1, 2, 3), figure(2, 3, 4)]) == 1
    with pytest.raises(ValueError):
        choose_trial([])


# --- The sweep in training --------------------------------------------------------------


def test_a_sweep_keeps_the_best_trial_on_validation_and_never_shows_it_the_test_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    train, val, test = part(24, 100), part(12, 500), part(12, 900)
    log: list[tuple[str, Any]] = []
    real_evaluate, real_choose = retrain_module.evaluate, retrain_module.choose_trial

    def evaluate_spy(model: Any, images: Any, labels: Any, **kwargs: Any) -> Any:
        which = "test" if images is test[0] else "val" if images is val[0] else "?"
        log.append(("evaluate", which))
        return real_evaluate(model, images, labels, **kwargs)

    def choose_spy(figures: Any) -> int:
        log.append(("choose", list(figures)))
        return real_choose(figures)

    monkeypatch.setattr(retrain_module, "evaluate", evaluate_spy)
    monkeypatch.setattr(training_module, "evaluate", evaluate_spy)  # per-epoch validation
    monkeypatch.setattr(retrain_module, "choose_trial", choose_spy)
    # 1e-6 barely moves the weights in two epochs: that trial must lose on validation.
    trials = (Trial(seed=5, lr=1e-6), Trial(seed=5, lr=0.003), Trial(seed=6, lr=0.003))
    common: dict[str, Any] = {"epochs": 2, "batch_size": 8, "num_threads": 1}
    with tempfile.TemporaryDirectory() as folder:
        outcome = retrain(
            SPEC,
            train=train,
            val=val,
            test=test,
            out_path=Path(folder) / "sweep.pt",
            seed=5,
            lr=0.003,
            trials=trials,
            **common,
        )

    # The choice saw validation figures only, for every trial, and before any test image.
    chosen_at = max(i for i, (kind, _) in enumerate(log) if kind == "choose")
    final_choice = log[chosen_at][1]
    assert [f.trial for f in final_choice] == list(trials)
    assert all(isinstance(f, TrialValidation) and f.val_n == len(val[0]) for f in final_choice)
    before = [what for kind, what in log[:chosen_at] if kind == "evaluate"]
    assert before and set(before) == {"val"}
    after = [what for kind, what in log[chosen_at:] if kind == "evaluate"]
    assert after == ["test", "test"]  # the chosen model once, then the baseline once

    record = outcome.sweep
    assert record is not None and record["selected_on"] == "validation"
    accuracies = [t["val_accuracy"] for t in record["trials"]]
    assert record["chosen"] == accuracies.index(max(accuracies))
    assert record["chosen_lr"] == 0.003 and accuracies[0] < max(accuracies)
    chosen = trials[record["chosen"]]
    assert (outcome.seed, outcome.hyperparameters["lr"]) == (chosen.seed, chosen.lr)
    assert [r.epoch for r in outcome.history] == [1, 2]

    # The weights kept are the chosen trial's: training it alone gives the same file.
    monkeypatch.undo()
    with tempfile.TemporaryDirectory() as folder:
        alone = retrain(
            SPEC,
            train=train,
            val=val,
            test=test,
            out_path=Path(folder) / "alone.pt",
            seed=chosen.seed,
            lr=chosen.lr,
            **common,
        )
    assert alone.sha256 == outcome.sha256
    assert alone.test == outcome.test and alone.sweep is None


def test_a_sweep_without_validation_images_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="validation split"):
        retrain(
            SPEC,
            train=part(8, 1),
            val=([], []),
            test=part(4, 50),
            out_path=tmp_path / "never.pt",
            seed=1,
            epochs=1,
            lr=0.003,
            batch_size=4,
            trials=(Trial(1, 0.003), Trial(2, 0.003)),
        )
    assert not (tmp_path / "never.pt").exists()
