"""Streams of measured demo cases through the drift check: false alarms and detection delay.

Shared by ``tests/decisions/test_drift_simulation.py`` (asserts the stated bounds) and
``bench/drift_simulation.py`` (prints the figures for ``docs/benchmarks.md``).

A stream starts with ``REFERENCE`` cases drawn from the normal pool (the reference
window), then draws cases one by one; every ``EVERY`` cases the newest ``WINDOW`` are
checked against the reference (``decisions.drift.drift_check`` with the default
``DriftConfig``), and an alarm is raised when ``decisions.drift.persistent`` names a
metric. After an alarm the history starts again (a new alarm is a new episode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from decisions.drift import DriftConfig, drift_check, persistent
from tests.decisions.drift_pool import METRICS, OUTPUTS, Pool, pool

REFERENCE = 300
WINDOW = 200
EVERY = 50


def _check(reference: Pool, recent: Pool, config: DriftConfig, seed: int) -> tuple[str, ...]:
    report = drift_check(
        reference={name: reference.values[name] for name in METRICS + OUTPUTS},
        recent={name: recent.values[name] for name in METRICS + OUTPUTS},
        reference_labels=list(reference.labels),
        recent_labels=list(recent.labels),
        reference_embeddings=reference.embeddings,
        recent_embeddings=recent.embeddings,
        config=config,
        seed=seed,
    )
    return report.drifted


@dataclass(frozen=True)
class StreamResult:
    alarms: int
    cases: int
    first_alarm_after: int | None  # cases after the switch to the drifted pool
    first_alarm_metrics: tuple[str, ...]


def run_stream(
    *,
    seed: int,
    cases: int,
    drift: str | None = None,
    config: DriftConfig | None = None,
    stop_at_first: bool = False,
) -> StreamResult:
    """``cases`` cases after the reference, from the ``drift`` pool (None: normal)."""
    config = config or DriftConfig()
    rng = np.random.default_rng(seed)
    normal = pool(None)
    source = pool(drift) if drift else normal
    reference = normal.take(rng.integers(0, len(normal), REFERENCE))
    recent_index = rng.integers(0, len(source), cases)
    stream = source.take(recent_index)
    # The window starts full of reference-period cases, as in production after a switch.
    warm = normal.take(rng.integers(0, len(normal), WINDOW))
    history: list[tuple[str, ...]] = []
    alarms = 0
    first: int | None = None
    first_metrics: tuple[str, ...] = ()
    for seen in range(EVERY, cases + 1, EVERY):
        if seen >= WINDOW:
            window = stream.take(np.arange(seen - WINDOW, seen))
        else:
            window = _concat(warm.take(np.arange(seen, WINDOW)), stream.take(np.arange(seen)))
        history.append(_check(reference, window, config, seed=seed * 100_003 + seen))
        named = persistent(history, config.persistence)
        if named:
            alarms += 1
            history.clear()
            if first is None:
                first, first_metrics = seen, named
                if stop_at_first:
                    break
    return StreamResult(alarms, cases, first, first_metrics)


def _concat(first: Pool, second: Pool) -> Pool:
    return Pool(
        values={
            name: np.concatenate([first.values[name], second.values[name]]) for name in first.values
        },
        labels=np.concatenate([first.labels, second.labels]),
        truth=np.concatenate([first.truth, second.truth]),
        correct=np.concatenate([first.correct, second.correct]),
        embeddings=np.vstack([first.embeddings, second.embeddings]),
    )
