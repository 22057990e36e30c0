"""A small hyper-parameter sweep: which trials to train, and which one to keep.

Django-free. A ``Sweep`` names a few seeds and/or learning rates; its trials are every
pair (seed, learning rate), at most ``MAX_TRIALS``. Each trial trains on the training
split; ``choose_trial`` picks one from **validation figures only** (it is never given a
test figure, so the held-out test split stays an unbiased measure of the chosen model,
evaluated once, after the choice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

MAX_TRIALS = 6
MAX_SEED = 2**62
SWEEP_KEYS = ("seeds", "lrs")


@dataclass(frozen=True)
class Trial:
    """One training of a sweep: its seed and learning rate."""

    seed: int
    lr: float


@dataclass(frozen=True)
class TrialValidation:
    """How one trial's final weights did on the validation split (and nothing else)."""

    trial: Trial
    val_correct: int
    val_n: int

    @property
    def val_accuracy(self) -> float:
        return self.val_correct / self.val_n

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.trial.seed,
            "lr": self.trial.lr,
            "val_accuracy": self.val_accuracy,
            "val_correct": self.val_correct,
            "val_n": self.val_n,
        }


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"sweep.seeds: each a whole number from 0 to {MAX_SEED}, got {value!r}")
    return value


def _lr(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"sweep.lrs: each a number above 0 and at most 1, got {value!r}")
    if math.isnan(value) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"sweep.lrs: each a number above 0 and at most 1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Sweep:
    """Seeds and learning rates to try; an empty tuple means "the run's own"."""

    seeds: tuple[int, ...] = ()
    lrs: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, *, seed: int | None = None, lr: float | None = None) -> Sweep:
        """From JSON data such as ``{"seeds": [1, 2, 3], "lrs": [0.003, 0.001]}``.

        Raises ``ValueError`` naming the key: unknown keys, values that are not lists of
        distinct seeds or learning rates, fewer than 2 or more than ``MAX_TRIALS``
        trials (counting the run's own ``seed``/``lr`` for a key not given).
        """
        if not isinstance(data, dict):
            raise ValueError('sweep: must be an object such as {"seeds": [1, 2, 3]}')
        unknown = sorted(set(data) - set(SWEEP_KEYS))
        if unknown:
            raise ValueError(f"sweep: unknown keys {unknown} (known: {', '.join(SWEEP_KEYS)})")
        values: dict[str, tuple[Any, ...]] = {}
        for key, parse in (("seeds", _seed), ("lrs", _lr)):
            given = data.get(key) or []
            if not isinstance(given, list):
                raise ValueError(f"sweep.{key}: must be a list")
            parsed = tuple(parse(item) for item in given)
            if len(set(parsed)) != len(parsed):
                raise ValueError(f"sweep.{key}: each value once")
            values[key] = parsed
        sweep = cls(seeds=values["seeds"], lrs=values["lrs"])
        count = len(sweep.trials(seed=seed if seed is not None else 0, lr=lr or 1.0))
        if count < 2:
            raise ValueError("sweep: at least 2 trials (two seeds, or two learning rates)")
        if count > MAX_TRIALS:
            raise ValueError(
                f"sweep: at most {MAX_TRIALS} trials (seeds times learning rates), got {count}"
            )
        return sweep

    def trials(self, *, seed: int, lr: float) -> tuple[Trial, ...]:
        """Every (seed, lr) pair, in the order given; ``seed``/``lr`` fill an empty key."""
        return tuple(
            Trial(seed=s, lr=rate) for s, rate in product(self.seeds or (seed,), self.lrs or (lr,))
        )

    def as_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "lrs": list(self.lrs)}


def choose_trial(validation: Sequence[TrialValidation]) -> int:
    """Index of the trial to keep: the highest validation accuracy; a tie goes to the
    earliest trial (the order the admin listed them). Validation figures only, by design."""
    if not validation:
        raise ValueError("no trials to choose from")
    best = 0
    for index, result in enumerate(validation):
        leader = validation[best]
        # Compared as fractions: exact, so equal accuracies are a tie.
        if result.val_correct * leader.val_n > leader.val_correct * result.val_n:
            best = index
    return best
