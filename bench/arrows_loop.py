"""The whole loop on a task unlike the demo: arrows, where orientation is the class.

    python bench/arrows_loop.py [--n-train 600] [--epochs 6] [--size 40] [--flips]

Generates arrows (4 directions, random colours, 40 px: another size, colour and task
than the demo's 128 px grey metal plates), retrains ResNet-18 from scratch with the
chosen augmentation (default: the orientation-safe one), then runs the pure decision
core as the platform does: calibration labels (an unbiased "shadow" sample) calibrate
the threshold for a 2% error target at 95% confidence, the partial gate judges a
policy at that threshold, the full gate judges overall accuracy, and a fresh stream
nobody used measures what partial automation would really do. Prints the figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decisions.gate import GatePolicy, evidence_judge, partial_judge
from decisions.routing import Level
from decisions.thresholds import ScoredLabel, calibrate_by_class
from inference.augment import DEFAULT, FLIPS
from inference.loader import load_model
from inference.retrain import retrain, stratified_split
from inference.spec import ModelSpec
from inference.synthetic import ARROW_LABELS, generate_arrows


def scored(model, data) -> list[ScoredLabel]:
    results = model.predict([image for image, _ in data])
    return [
        ScoredLabel(r.label, r.confidence, r.label == label)
        for r, (_, label) in zip(results, data, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--n-calibration", type=int, default=1500)
    parser.add_argument("--n-stream", type=int, default=3000)
    parser.add_argument("--target-error", type=float, default=0.02)
    parser.add_argument("--flips", action="store_true", help="train with flips instead")
    options = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    augmentation = FLIPS if options.flips else DEFAULT
    data = generate_arrows(options.n_train, seed=10, size=options.size)
    keys = {f"a{k:05d}": item for k, item in enumerate(data)}
    split = stratified_split(
        [(key, label) for key, (_, label) in keys.items()], test_share=0.15, val_share=0.1, seed=0
    )

    def part(names):
        return [keys[n][0] for n in names], [keys[n][1] for n in names]

    spec = ModelSpec("resnet18", ARROW_LABELS, options.size)
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "arrows.pt"
        outcome = retrain(
            spec,
            train=part(split.train),
            val=part(split.val),
            test=part(split.test),
            out_path=path,
            seed=0,
            epochs=options.epochs,
            lr=3e-3,
            batch_size=16,
            augmentation=augmentation,
        )
        model = load_model(spec, path, expected_sha256=outcome.sha256)
        trained = time.perf_counter()
        calibration = scored(
            model, generate_arrows(options.n_calibration, seed=11, size=options.size)
        )
        stream = scored(model, generate_arrows(options.n_stream, seed=12, size=options.size))
    print(
        f"arrows {options.size}px, resnet18 from scratch, augmentation: {augmentation.describe()}; "
        f"{len(split.train)} train / {len(split.val)} val / {len(split.test)} test, "
        f"{options.epochs} epochs ({trained - started:.0f} s)"
    )
    print(f"  held-out test accuracy {outcome.test['accuracy']:.3f} (n={outcome.test['n']})")
    right = sum(s.correct for s in calibration)
    print(f"  calibration labels: {len(calibration)}, accuracy {right / len(calibration):.3f}")
    probe = GatePolicy(
        level=Level.PARTIAL,
        confidence_threshold=1.0,
        audit_rate=0.05,
        target_accuracy=0.98,
        min_evidence=200,
        target_error=options.target_error,
    )
    args = dict(
        labels=list(ARROW_LABELS),
        model_version="arrows:v1",
        since=None,
        target_error=options.target_error,
        min_evidence=200,
        confidence=0.95,
    )
    calibrated = partial_judge(scored=calibration, policy=probe, **args).calibrated_threshold
    print(f"  calibrated threshold for error < {options.target_error:.0%} at 95%: {calibrated}")
    if calibrated is not None:
        policy = GatePolicy(
            level=Level.PARTIAL,
            confidence_threshold=calibrated,
            audit_rate=0.05,
            target_accuracy=0.98,
            min_evidence=200,
            target_error=options.target_error,
        )
        verdict = partial_judge(scored=calibration, policy=policy, **args)
        print(f"  partial gate: {'allowed' if verdict.sufficient else 'refused'}: {verdict.reason}")
        auto = [s for s in stream if s.confidence >= calibrated]
        wrong = sum(not s.correct for s in auto)
        print(
            f"  fresh stream of {len(stream)}: automated {len(auto) / len(stream):.1%}, "
            f"error among automatic decisions {wrong / max(len(auto), 1):.2%} ({wrong} of "
            f"{len(auto)}); target {options.target_error:.0%}"
        )
    full = evidence_judge(
        level=Level.FULL,
        successes=right,
        n=len(calibration),
        model_version="arrows:v1",
        since=None,
        target_accuracy=0.98,
        min_evidence=200,
        confidence=0.95,
    )
    print(
        f"  full gate at 98% accuracy: {'allowed' if full.sufficient else 'refused'}: {full.reason}"
    )
    per_class = calibrate_by_class(
        calibration, labels=list(ARROW_LABELS), target_error=options.target_error, confidence=0.95
    )
    for hint in per_class.hints:
        print(
            f"    class {hint.label}: {hint.n} labels, threshold {hint.threshold}, "
            f"{hint.labels_needed} more for its own"
        )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
