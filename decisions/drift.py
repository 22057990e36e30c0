"""Drift of a workflow's inputs and outputs, with statistics that hold; accuracy without labels.

Pure functions (numpy and scipy, no Django). A check compares a *reference* sample (what
the serving level was earned on) with the *recent* window, metric by metric:

* each continuous metric (brightness, contrast, ..., confidence, margin, entropy): the
  two-sample Kolmogorov-Smirnov test for the p-value, and as effect sizes the
  Wasserstein distance in units of the reference's standard deviation and the
  population stability index (PSI) over the reference's deciles;
* the class mix: a chi-square test of the label counts, effect = total variation
  distance between the two label distributions;
* the embeddings: the maximum mean discrepancy (MMD, Gaussian kernel with the median
  distance as bandwidth) with a permutation test.

Multiple testing: the per-metric p-values of one check form one family, controlled with
Holm's step-down at ``alpha`` (family-wise error); the embedding test, whose permutation
p-value cannot go below ``1 / (1 + permutations)``, is a second family at
``embedding_alpha`` (so one check's family-wise error is at most their sum, Bonferroni).
A metric counts as drifted only when it is Holm-significant *and* its effect is at least
the floor (a real but negligible change on a large window is not an alarm); an alarm
needs the metric drifted in ``persistence`` consecutive checks (``persistent``). The
false-alarm rate and detection delay of these
defaults on the demo generator are measured in ``tests/decisions/test_drift_simulation.py``
and reported in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import stats

EMBEDDING = "embedding"
CLASS_MIX = "class_mix"


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the drift check; per workflow, with these defaults."""

    alpha: float = 0.001  # family-wise error rate of the per-metric tests of one check (Holm)
    embedding_alpha: float = 0.002  # the embedding test's own level (a second family)
    min_effect: float = 0.35  # Wasserstein distance in reference standard deviations
    min_class_shift: float = 0.10  # total variation distance of the class mix
    min_samples: int = 100  # below this in either sample, no verdict
    persistence: int = 2  # consecutive drifted checks before an alarm
    permutations: int = 999  # for the MMD test: its smallest p-value is 1 / (1 + this)
    embedding_sample: int = 150  # the MMD test uses at most this many of each sample
    # Measure-zero spreads: a reference metric with a standard deviation below this is
    # treated as constant (an effect is then "any change", measured in absolute units).
    constant_below: float = 1e-9

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or not 0 < self.embedding_alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_effect < 0 or self.min_class_shift < 0:
            raise ValueError("effect floors must be non-negative")
        if self.min_samples < 10:
            raise ValueError(f"min_samples must be at least 10, got {self.min_samples}")
        if self.persistence < 1:
            raise ValueError(f"persistence must be at least 1, got {self.persistence}")
        if self.embedding_sample < 10:
            raise ValueError(f"embedding_sample must be at least 10, got {self.embedding_sample}")
        if self.permutations < 19:
            raise ValueError(f"permutations must be at least 19, got {self.permutations}")


@dataclass(frozen=True)
class MetricDrift:
    """One metric's comparison. ``effect`` is what the floor applies to (see module doc)."""

    name: str
    test: str
    p_value: float
    statistic: float
    effect: float
    psi: float | None
    n_reference: int
    n_recent: int
    reference_mean: float | None
    recent_mean: float | None
    significant: bool = False  # after Holm's correction
    drifted: bool = False  # significant and the effect at least the floor

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "test": self.test,
            "p_value": _finite(self.p_value),
            "statistic": _finite(self.statistic),
            "effect": _finite(self.effect),
            "psi": _finite(self.psi),
            "n_reference": self.n_reference,
            "n_recent": self.n_recent,
            "reference_mean": _finite(self.reference_mean),
            "recent_mean": _finite(self.recent_mean),
            "significant": self.significant,
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class DriftReport:
    metrics: tuple[MetricDrift, ...]
    enough_data: bool
    reason: str
    drifted: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {
            "enough_data": self.enough_data,
            "reason": self.reason,
            "drifted": list(self.drifted),
            "metrics": [metric.as_dict() for metric in self.metrics],
        }


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _clean(values: npt.ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def psi(reference: npt.ArrayLike, recent: npt.ArrayLike, bins: int = 10) -> float:
    """Population stability index over the reference's quantile bins (0: identical).

    Conventional reading: < 0.1 no shift, 0.1-0.25 moderate, > 0.25 large. Empty bins get
    half a count so the index stays finite.
    """
    ref, new = _clean(reference), _clean(recent)
    if ref.size == 0 or new.size == 0:
        raise ValueError("psi needs two non-empty samples")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    new_counts = np.bincount(np.searchsorted(edges, new, side="right"), minlength=edges.size + 1)
    p = (ref_counts + 0.5) / (ref.size + 0.5 * ref_counts.size)
    q = (new_counts + 0.5) / (new.size + 0.5 * new_counts.size)
    return float(np.sum((q - p) * np.log(q / p)))


def continuous_drift(
    name: str, reference: npt.ArrayLike, recent: npt.ArrayLike, config: DriftConfig
) -> MetricDrift:
    """KS p-value, Wasserstein effect in reference standard deviations, PSI."""
    ref, new = _clean(reference), _clean(recent)
    if ref.size == 0 or new.size == 0:
        return MetricDrift(
            name, "ks", 1.0, 0.0, 0.0, None, int(ref.size), int(new.size), None, None
        )
    result = stats.ks_2samp(ref, new)
    distance = float(stats.wasserstein_distance(ref, new))
    spread = float(ref.std())
    effect = distance / spread if spread > config.constant_below else distance
    return MetricDrift(
        name=name,
        test="ks",
        p_value=float(result.pvalue),
        statistic=float(result.statistic),
        effect=effect,
        psi=psi(ref, new),
        n_reference=int(ref.size),
        n_recent=int(new.size),
        reference_mean=float(ref.mean()),
        recent_mean=float(new.mean()),
    )


def class_mix_drift(reference: Sequence[str], recent: Sequence[str]) -> MetricDrift:
    """Chi-square test of the label counts; effect = total variation distance."""
    labels = sorted(set(reference) | set(recent))
    if not reference or not recent or len(labels) < 2:
        return MetricDrift(
            CLASS_MIX, "chi2", 1.0, 0.0, 0.0, None, len(reference), len(recent), None, None
        )
    ref_counts = np.array([list(reference).count(label) for label in labels], dtype=np.float64)
    new_counts = np.array([list(recent).count(label) for label in labels], dtype=np.float64)
    table = np.vstack([ref_counts, new_counts])
    statistic, p_value, _, _ = stats.chi2_contingency(table)
    tvd = 0.5 * float(np.abs(ref_counts / ref_counts.sum() - new_counts / new_counts.sum()).sum())
    return MetricDrift(
        CLASS_MIX,
        "chi2",
        float(p_value),
        float(statistic),
        tvd,
        None,
        len(reference),
        len(recent),
        None,
        None,
    )


def mmd_test(
    reference: npt.ArrayLike, recent: npt.ArrayLike, *, permutations: int, seed: int = 0
) -> tuple[float, float]:
    """(MMD², permutation p-value) with a Gaussian kernel, median-distance bandwidth.

    The statistic leaves out the kernel's diagonal (each point with itself), and is
    ``w' K w`` for the weight vector ``w`` (``1/n`` on the reference, ``-1/m`` on the
    recent sample), so all permutations are one matrix product.
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(recent, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"embeddings must be (n, d) of one d, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError("the MMD test needs at least two embeddings in each sample")
    pooled = np.vstack([x, y])
    squared = np.sum(pooled**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T, 0.0)
    upper = distances[np.triu_indices(len(pooled), k=1)]
    bandwidth = float(np.median(upper)) or 1.0
    kernel = np.exp(-distances / bandwidth).astype(np.float32)
    np.fill_diagonal(kernel, 0.0)
    n, m = len(x), len(y)
    weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)]).astype(np.float32)
    observed = float(weights @ kernel @ weights)
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(weights, (permutations, 1)), axis=1)
    null = np.sum((shuffled @ kernel) * shuffled, axis=1)
    at_least = int(np.sum(null >= observed - 1e-12))
    return observed, (1 + at_least) / (1 + permutations)


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down: which hypotheses are rejected at family-wise error ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    rejected = [False] * len(p_values)
    total = len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (total - rank):
            break
        rejected[index] = True
    return rejected


def drift_check(
    *,
    reference: Mapping[str, npt.ArrayLike],
    recent: Mapping[str, npt.ArrayLike],
    reference_labels: Sequence[str] = (),
    recent_labels: Sequence[str] = (),
    reference_embeddings: npt.ArrayLike | None = None,
    recent_embeddings: npt.ArrayLike | None = None,
    config: DriftConfig | None = None,
    seed: int = 0,
) -> DriftReport:
    """One check: every metric of ``reference`` that ``recent`` also has, the class mix
    and the embeddings when given, Holm across all of them, effect floors applied."""
    config = config or DriftConfig()
    n_reference = min((len(_clean(v)) for v in reference.values()), default=0)
    n_recent = min((len(_clean(v)) for v in recent.values()), default=0)
    if reference_labels or recent_labels:
        n_reference = (
            min(n_reference, len(reference_labels)) if reference else len(reference_labels)
        )
        n_recent = min(n_recent, len(recent_labels)) if recent else len(recent_labels)
    if n_reference < config.min_samples or n_recent < config.min_samples:
        return DriftReport(
            metrics=(),
            enough_data=False,
            reason=(
                f"not enough cases to judge drift: {n_reference} in the reference and "
                f"{n_recent} recent, {config.min_samples} needed in each"
            ),
        )
    results = [
        continuous_drift(name, reference[name], recent[name], config)
        for name in reference
        if name in recent
    ]
    if reference_labels and recent_labels:
        results.append(class_mix_drift(reference_labels, recent_labels))
    if reference_embeddings is not None and recent_embeddings is not None:
        ref_emb = np.asarray(reference_embeddings, dtype=np.float64)
        new_emb = np.asarray(recent_embeddings, dtype=np.float64)
        # The newest of the recent sample and an evenly spaced subsample of the reference.
        cap = config.embedding_sample
        if len(ref_emb) > cap:
            ref_emb = ref_emb[np.linspace(0, len(ref_emb) - 1, cap).astype(int)]
        new_emb = new_emb[-cap:]
        if ref_emb.ndim == 2 and new_emb.ndim == 2 and len(ref_emb) >= 2 and len(new_emb) >= 2:
            value, p_value = mmd_test(ref_emb, new_emb, permutations=config.permutations, seed=seed)
            results.append(
                MetricDrift(
                    EMBEDDING,
                    "mmd",
                    p_value,
                    value,
                    value,
                    None,
                    len(ref_emb),
                    len(new_emb),
                    None,
                    None,
                )
            )
    univariate = [metric for metric in results if metric.name != EMBEDDING]
    rejected = dict(
        zip(
            (metric.name for metric in univariate),
            holm([metric.p_value for metric in univariate], config.alpha),
            strict=True,
        )
    )
    judged = []
    for metric in results:
        significant = (
            metric.p_value <= config.embedding_alpha
            if metric.name == EMBEDDING
            else rejected[metric.name]
        )
        floor = (
            config.min_class_shift
            if metric.name == CLASS_MIX
            else 0.0
            if metric.name == EMBEDDING
            else config.min_effect
        )
        judged.append(
            MetricDrift(
                **{
                    **metric.__dict__,
                    "significant": significant,
                    "drifted": significant and metric.effect >= floor,
                }
            )
        )
    drifted = tuple(metric.name for metric in judged if metric.drifted)
    if drifted:
        worst = max((m for m in judged if m.drifted), key=lambda m: m.effect)
        reason = (
            f"{', '.join(drifted)} differ from the reference (Holm-corrected at "
            f"{config.alpha:g}; largest effect {worst.name}: {worst.effect:.2f})"
        )
    else:
        reason = f"no metric differs from the reference (Holm-corrected at {config.alpha:g})"
    return DriftReport(metrics=tuple(judged), enough_data=True, reason=reason, drifted=drifted)


def persistent(history: Sequence[Sequence[str]], persistence: int) -> tuple[str, ...]:
    """The metrics drifted in each of the last ``persistence`` checks (oldest first)."""
    if persistence < 1:
        raise ValueError(f"persistence must be at least 1, got {persistence}")
    if len(history) < persistence:
        return ()
    recent = [set(names) for names in history[-persistence:]]
    common = set.intersection(*recent)
    return tuple(name for name in history[-1] if name in common)


# --- Accuracy without labels -----------------------------------------------------------


@dataclass(frozen=True)
class AccuracyEstimate:
    """The serving model's estimated accuracy on recent cases, from its outputs only.

    Two estimates, and the smaller is reported (``estimate``):

    * ``confidence_estimate``: ATC, average thresholded confidence (Garg et al., 2022):
      the share of recent cases above the confidence at which, on the labelled reference,
      that share equals the measured accuracy; with too few labelled reference cases,
      the mean top confidence (right for a calibrated model). Method in ``method``.
    * ``mix_bound``: an upper bound from the class mix. If the true class mix of the line
      is what the reference's labels say, no more than ``sum_c min(true_c, predicted_c)``
      of recent cases can be right. It catches what confidence cannot: a model that is
      confidently wrong under a shift (the demo's lighting change makes it call every
      part ``ok`` at high confidence). ``None`` without a reference mix.
    """

    estimate: float
    method: str
    confidence_estimate: float
    mix_bound: float | None
    threshold: float | None
    n_recent: int
    n_labelled_reference: int

    def as_dict(self) -> dict[str, object]:
        return {
            "estimate": self.estimate,
            "method": self.method,
            "confidence_estimate": self.confidence_estimate,
            "mix_bound": self.mix_bound,
            "threshold": self.threshold,
            "n_recent": self.n_recent,
            "n_labelled_reference": self.n_labelled_reference,
        }


def atc_threshold(confidences: npt.ArrayLike, correct: Sequence[bool]) -> float:
    """The confidence ``t`` such that the share of reference cases above ``t`` equals the
    reference accuracy."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    if conf.shape != right.shape or conf.size == 0:
        raise ValueError("atc_threshold needs one correctness flag per confidence, at least one")
    accuracy = float(right.mean())
    # The (1 - accuracy) quantile: that share of cases lies at or below it.
    return float(np.quantile(conf, 1.0 - accuracy, method="lower")) if accuracy < 1 else -math.inf


def class_mix_bound(true_mix: Mapping[str, float], predicted: Sequence[str]) -> float:
    """Most accuracy ``predicted`` labels can have when the true mix is ``true_mix``."""
    if not predicted:
        raise ValueError("class_mix_bound needs predicted labels")
    total = sum(true_mix.values())
    if total <= 0:
        raise ValueError("true_mix must have a positive total")
    counts: dict[str, int] = {}
    for label in predicted:
        counts[label] = counts.get(label, 0) + 1
    return float(
        sum(
            min(share / total, counts.get(label, 0) / len(predicted))
            for label, share in true_mix.items()
        )
    )


def label_free_accuracy(
    *,
    recent_confidences: npt.ArrayLike,
    reference_confidences: npt.ArrayLike = (),
    reference_correct: Sequence[bool] = (),
    reference_mix: Mapping[str, float] | None = None,
    recent_labels: Sequence[str] = (),
    min_labelled: int = 50,
) -> AccuracyEstimate:
    """Estimate accuracy on recent cases (see ``AccuracyEstimate``).

    ``reference_correct`` flags, for labelled reference cases, whether the model was right
    (``reference_confidences`` are theirs); ``reference_mix`` is the true class mix (label
    -> share or count) and ``recent_labels`` the model's recent top labels.
    """
    recent = _clean(recent_confidences)
    if recent.size == 0:
        raise ValueError("label_free_accuracy needs recent confidences")
    reference = np.asarray(reference_confidences, dtype=np.float64)
    threshold: float | None = None
    if len(reference_correct) >= min_labelled and reference.size == len(reference_correct):
        cut = atc_threshold(reference, reference_correct)
        confidence_estimate = float(np.mean(recent > cut))
        method, threshold = "atc", _finite(cut)
    else:
        confidence_estimate, method = float(recent.mean()), "confidence"
    bound = (
        class_mix_bound(reference_mix, recent_labels) if reference_mix and recent_labels else None
    )
    estimate = confidence_estimate if bound is None else min(confidence_estimate, bound)
    return AccuracyEstimate(
        estimate=estimate,
        method=method if bound is None or confidence_estimate <= bound else "class_mix",
        confidence_estimate=confidence_estimate,
        mix_bound=bound,
        threshold=threshold,
        n_recent=int(recent.size),
        n_labelled_reference=len(reference_correct),
    )
