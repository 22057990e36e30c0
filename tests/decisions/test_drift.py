"""The drift statistics on samples whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from decisions.drift import (
    CLASS_MIX,
    EMBEDDING,
    DriftConfig,
    atc_threshold,
    class_mix_bound,
    class_mix_drift,
    drift_check,
    holm,
    label_free_accuracy,
    mmd_test,
    persistent,
    psi,
)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": 0},
        {"alpha": 1.5},
        {"embedding_alpha": 0},
        {"min_effect": -1},
        {"min_samples": 3},
        {"persistence": 0},
        {"permutations": 5},
    ],
)
def test_config_refuses_nonsense(kwargs) -> None:
    with pytest.raises(ValueError):
        DriftConfig(**kwargs)


def test_too_few_cases_give_no_verdict_and_say_why() -> None:
    report = drift_check(reference={"brightness": np.ones(50)}, recent={"brightness": np.ones(500)})
    assert not report.enough_data and report.drifted == ()
    assert "50 in the reference" in report.reason


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    sample = rng.normal(size=2000)
    assert psi(sample, sample) == pytest.approx(0, abs=1e-9)
    assert psi(sample, sample + 1) > 0.25
    with pytest.raises(ValueError):
        psi([], sample)


def test_holm_rejects_in_order_and_stops_at_the_first_failure() -> None:
    assert holm([0.001, 0.04, 0.03], alpha=0.05) == [True, False, False]
    assert holm([0.001, 0.02, 0.04], alpha=0.05) == [True, True, True]
    assert holm([0.2, 0.001], alpha=0.01) == [False, True]
    assert holm([], alpha=0.05) == []


def test_a_shifted_metric_is_drifted_and_a_tiny_significant_one_is_not() -> None:
    rng = np.random.default_rng(1)
    reference = {"brightness": rng.normal(150, 10, 3000), "contrast": rng.normal(20, 3, 3000)}
    recent = {"brightness": rng.normal(90, 10, 3000), "contrast": rng.normal(20.4, 3, 3000)}
    report = drift_check(reference=reference, recent=recent)
    by_name = {metric.name: metric for metric in report.metrics}
    assert report.drifted == ("brightness",)
    assert by_name["brightness"].effect == pytest.approx(6, rel=0.1)
    assert by_name["brightness"].recent_mean == pytest.approx(90, abs=1)
    # Contrast moved by 0.13 standard deviations: maybe significant on 3000 cases, but
    # below the effect floor, so not drift.
    assert not by_name["contrast"].drifted
    assert "brightness" in report.reason


def test_a_constant_reference_metric_drifts_when_it_changes() -> None:
    report = drift_check(
        reference={"width": np.full(200, 128.0)}, recent={"width": np.full(200, 256.0)}
    )
    assert report.drifted == ("width",)


def test_class_mix_drift_measures_total_variation() -> None:
    same = class_mix_drift(["ok"] * 60 + ["crack"] * 40, ["ok"] * 60 + ["crack"] * 40)
    assert same.p_value == pytest.approx(1.0) and same.effect == 0
    moved = class_mix_drift(["ok"] * 60 + ["crack"] * 40, ["ok"] * 95 + ["crack"] * 5)
    assert moved.name == CLASS_MIX and moved.effect == pytest.approx(0.35)
    assert moved.p_value < 1e-6


def test_mmd_finds_a_shift_in_the_embeddings_and_not_in_the_same_distribution() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 8))
    _, p_same = mmd_test(x, rng.normal(size=(150, 8)), permutations=199)
    _, p_shift = mmd_test(x, rng.normal(0.5, 1, size=(150, 8)), permutations=199)
    assert p_same > 0.01
    assert p_shift == pytest.approx(1 / 200)
    with pytest.raises(ValueError):
        mmd_test(x, rng.normal(size=(10, 3)), permutations=99)


def test_drift_check_includes_the_class_mix_and_embeddings() -> None:
    rng = np.random.default_rng(3)
    report = drift_check(
        reference={"confidence": rng.uniform(size=200)},
        recent={"confidence": rng.uniform(size=200)},
        reference_labels=["ok"] * 120 + ["crack"] * 80,
        recent_labels=["ok"] * 190 + ["crack"] * 10,
        reference_embeddings=rng.normal(size=(200, 4)),
        recent_embeddings=rng.normal(2, 1, size=(200, 4)),
    )
    assert set(report.drifted) == {CLASS_MIX, EMBEDDING}
    assert [metric.name for metric in report.metrics] == ["confidence", CLASS_MIX, EMBEDDING]
    assert report.as_dict()["drifted"] == list(report.drifted)


def test_persistent_needs_the_metric_in_each_of_the_last_checks() -> None:
    assert persistent([("brightness",)], 2) == ()
    assert persistent([("brightness",), ("brightness", "contrast")], 2) == ("brightness",)
    assert persistent([("brightness",), (), ("brightness",)], 2) == ()
    with pytest.raises(ValueError):
        persistent([], 0)


def test_atc_threshold_splits_the_reference_at_its_accuracy() -> None:
    confidences = np.linspace(0.5, 1.0, 100)
    correct = [True] * 80 + [False] * 20
    threshold = atc_threshold(confidences, correct)
    assert np.mean(confidences > threshold) == pytest.approx(0.8, abs=0.01)
    with pytest.raises(ValueError):
        atc_threshold([0.5], [True, False])


def test_class_mix_bound_caps_accuracy_when_everything_is_called_ok() -> None:
    assert class_mix_bound({"ok": 55, "crack": 45}, ["ok"] * 100) == pytest.approx(0.55)
    assert class_mix_bound({"ok": 0.5, "crack": 0.5}, ["ok"] * 50 + ["crack"] * 50) == 1.0
    with pytest.raises(ValueError):
        class_mix_bound({"ok": 1}, [])


def test_label_free_accuracy_uses_atc_with_labels_and_confidence_without() -> None:
    rng = np.random.default_rng(4)
    reference = rng.uniform(0.5, 1, 200)
    correct = list(rng.uniform(size=200) < reference)
    with_labels = label_free_accuracy(
        recent_confidences=reference, reference_confidences=reference, reference_correct=correct
    )
    assert with_labels.method == "atc"
    assert with_labels.estimate == pytest.approx(np.mean(correct), abs=0.02)
    without = label_free_accuracy(recent_confidences=[0.9, 0.7])
    assert (without.method, without.estimate, without.mix_bound) == ("confidence", 0.8, None)
    capped = label_free_accuracy(
        recent_confidences=[0.99] * 100,
        reference_mix={"ok": 60, "crack": 40},
        recent_labels=["ok"] * 100,
    )
    assert (capped.method, capped.estimate) == ("class_mix", pytest.approx(0.6))
    with pytest.raises(ValueError):
        label_free_accuracy(recent_confidences=[])
