"""Retraining from labelled images: a seeded split, training, and evaluation on held-out data.

Django-free like the rest of ``inference``. The caller (``modelops``) gathers the
labelled images, chooses the seed and hyper-parameters, and stores what comes back:
the split (keys only), the weights file's checksum, the history, and the held-out
metrics of the new model *and* of a baseline (the version it was fine-tuned from, or
the untrained architecture), so that "better than before" is measured, not assumed.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from inference.architectures import build_model
from inference.augment import DEFAULT, Augmentation
from inference.loader import load_model
from inference.spec import ModelSpec
from inference.sweep import Trial, TrialValidation, choose_trial
from inference.training import (
    CancelCheck,
    EpochRecord,
    EvalResult,
    ProgressCallback,
    TrainResult,
    evaluate,
    save_weights,
    train_model,
)


@dataclass(frozen=True)
class Split:
    """Keys of the labelled items in each part. The three parts are disjoint."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


def stratified_split(
    items: Sequence[tuple[str, str]],
    *,
    test_share: float,
    val_share: float,
    seed: int,
    groups: Mapping[str, str] | None = None,
) -> Split:
    """Split ``(key, label)`` pairs per label, reproducibly for the same items and seed.

    Items are sorted by key first, so the split does not depend on the order they came
    in. Each label with at least two items puts ``round(share * count)`` of them (at
    least one) into the test part and likewise into the validation part, keeping at
    least one for training; a label with a single item goes to training.

    ``groups`` maps a key to its group (e.g. the first case of a repeated image); the
    items of one group always land in the same part, so the same image is never trained
    on and tested on. Groups are split like items, stratified by the label of the group's
    first key; keys absent from ``groups`` are groups of their own.
    """
    if not 0.0 < test_share < 1.0 or not 0.0 <= val_share < 1.0 or test_share + val_share >= 1.0:
        raise ValueError(
            f"need 0 < test_share, 0 <= val_share and test_share + val_share < 1, "
            f"got {test_share} and {val_share}"
        )
    members: dict[str, list[str]] = defaultdict(list)
    first_label: dict[str, str] = {}
    for key, label in sorted(items):
        unit = (groups or {}).get(key, key)
        members[unit].append(key)
        first_label.setdefault(unit, label)
    by_label: dict[str, list[str]] = defaultdict(list)
    for unit in sorted(members, key=lambda u: members[u][0]):
        by_label[first_label[unit]].append(unit)
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    train: list[str] = []
    val: list[str] = []
    test: list[str] = []
    for label in sorted(by_label):
        units = by_label[label]
        rng.shuffle(units)
        keys = [[key for key in members[unit]] for unit in units]
        if len(units) < 2:
            train.extend(key for group in keys for key in group)
            continue
        n_test = min(max(1, round(test_share * len(units))), len(units) - 1)
        n_val = round(val_share * len(units)) if val_share else 0
        n_val = min(max(1, n_val) if val_share else 0, len(units) - n_test - 1)
        test.extend(key for group in keys[:n_test] for key in group)
        val.extend(key for group in keys[n_test : n_test + n_val] for key in group)
        train.extend(key for group in keys[n_test + n_val :] for key in group)
    return Split(train=tuple(sorted(train)), val=tuple(sorted(val)), test=tuple(sorted(test)))


def eval_summary(result: EvalResult) -> dict[str, Any]:
    """An ``EvalResult`` as plain JSON-ready data (without the per-image confidences)."""
    return {
        "n": result.n,
        "correct": sum(correct for _, correct in result.confidences),
        "accuracy": result.accuracy,
        "labels": list(result.labels),
        "confusion": [list(row) for row in result.confusion],
        "per_class_accuracy": result.per_class_accuracy(),
    }


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retraining produced. ``test`` and ``baseline_test`` are ``eval_summary`` dicts
    on the same held-out images; ``baseline`` names what the baseline was. ``sweep`` (a
    sweep only): every trial's validation figures, and which one was kept."""

    sha256: str
    history: tuple[EpochRecord, ...]
    hyperparameters: dict[str, Any]
    seed: int
    test: dict[str, Any]
    baseline: str
    baseline_test: dict[str, Any]
    train_seconds: float
    sweep: dict[str, Any] | None = None


def retrain(
    spec: ModelSpec,
    *,
    train: tuple[Sequence[Image.Image], Sequence[str]],
    val: tuple[Sequence[Image.Image], Sequence[str]],
    test: tuple[Sequence[Image.Image], Sequence[str]],
    out_path: str | Path,
    seed: int,
    epochs: int,
    lr: float,
    batch_size: int,
    augmentation: Augmentation = DEFAULT,
    base_weights: tuple[str | Path, str] | None = None,
    device: str = "cpu",
    num_threads: int | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    trials: Sequence[Trial] | None = None,
) -> RetrainOutcome:
    """Train ``spec`` (warm-started from ``base_weights`` = (path, sha256) when given),
    write the weights to ``out_path``, and evaluate the result and the baseline on ``test``.

    ``trials`` (a sweep): train once per (seed, lr) trial instead of once with ``seed``
    and ``lr``, evaluate each trial's weights on ``val``, keep the one ``choose_trial``
    picks from those validation figures, and only then evaluate it on ``test`` (once).
    The test images are never shown to a trial or to the choice. ``progress`` counts
    epochs across trials (trial ``k``'s epoch ``e`` is ``k * epochs + e``).

    Raises ``TrainingCancelled`` when ``should_cancel`` says so, ``ModelLoadError`` when
    the base weights do not load, ``ValueError`` for unusable data (a sweep without
    validation images included). Nothing is written to ``out_path`` unless training
    finished.
    """
    test_images, test_labels = test
    if not test_images:
        raise ValueError("the held-out test split is empty")
    val_images, val_labels = val
    if trials is not None and not val_images:
        raise ValueError("a sweep chooses on the validation split, and it is empty")
    base = None
    init_state_dict = None
    if base_weights is not None:
        path, sha256 = base_weights
        base = load_model(spec, path, device="cpu", expected_sha256=sha256)
        init_state_dict = {
            key: value.detach().clone() for key, value in base._module.state_dict().items()
        }

    def train_one(trial: Trial, index: int) -> TrainResult:
        def report(epoch: int, loss: float, val_accuracy: float | None) -> None:
            if progress is not None:
                progress(index * epochs + epoch, loss, val_accuracy)

        return train_model(
            spec,
            train[0],
            train[1],
            epochs=epochs,
            seed=trial.seed,
            lr=trial.lr,
            batch_size=batch_size,
            augment=augmentation,
            init_state_dict=init_state_dict,
            val_images=val_images or None,
            val_labels=val_labels or None,
            device=device,
            progress=report,
            should_cancel=should_cancel,
            num_threads=num_threads or 1,
        )

    started = time.perf_counter()
    sweep_record = None
    if trials is None:
        result = train_one(Trial(seed=seed, lr=lr), 0)
    else:
        result, sweep_record = _sweep(spec, trials, train_one, (val_images, val_labels), device)
    train_seconds = time.perf_counter() - started
    sha256 = save_weights(result.state_dict, out_path)
    trained = build_model(spec)
    trained.load_state_dict(result.state_dict)
    new_test = evaluate(trained, test_images, test_labels, spec=spec, device=device)
    if base is not None:
        baseline_name = "base version"
        baseline_test = evaluate(base, test_images, test_labels)
    else:
        baseline_name = "untrained"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            untrained = build_model(spec)
        baseline_test = evaluate(untrained, test_images, test_labels, spec=spec, device=device)
    return RetrainOutcome(
        sha256=sha256,
        history=result.history,
        hyperparameters=result.hyperparameters,
        seed=result.seed,
        test=eval_summary(new_test),
        baseline=baseline_name,
        baseline_test=eval_summary(baseline_test),
        train_seconds=train_seconds,
        sweep=sweep_record,
    )


def _sweep(
    spec: ModelSpec,
    trials: Sequence[Trial],
    train_one: Callable[[Trial, int], TrainResult],
    val: tuple[Sequence[Image.Image], Sequence[str]],
    device: str,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train every trial (``train_one(trial, index)``), judge each on ``val`` only, and
    return the chosen one's result with the record of the sweep. Holds at most two
    trials' weights at a time."""
    if not trials:
        raise ValueError("a sweep needs at least one trial")
    figures: list[TrialValidation] = []
    kept: TrainResult | None = None
    seconds: list[float] = []
    for index, trial in enumerate(trials):
        started = time.perf_counter()
        result = train_one(trial, index)
        seconds.append(time.perf_counter() - started)
        model = build_model(spec)
        model.load_state_dict(result.state_dict)
        judged = evaluate(model, val[0], val[1], spec=spec, device=device)
        figures.append(
            TrialValidation(
                trial=trial,
                val_correct=sum(correct for _, correct in judged.confidences),
                val_n=judged.n,
            )
        )
        # The choice over the trials so far is the final choice's prefix: keep only the
        # current best's weights.
        if choose_trial(figures) == index:
            kept = result
    chosen = choose_trial(figures)
    if kept is None:  # unreachable: the first trial is always the best of one
        raise ValueError("no trial was kept")
    return kept, {
        "trials": [
            {**figure.as_dict(), "train_seconds": round(spent, 3)}
            for figure, spent in zip(figures, seconds, strict=True)
        ],
        "chosen": chosen,
        "chosen_seed": figures[chosen].trial.seed,
        "chosen_lr": figures[chosen].trial.lr,
        "selected_on": "validation",
        "metric": "val_accuracy",
    }
