"""Train the demo inspection model on synthetic images and write it with its model card.

    python -m inference.train_demo --out-dir inference/assets [--seed 0]

Train, validation and test images come from three independent seeds derived
from ``--seed``; the test split is never trained on and only measured at the
end. On the CPU, the same arguments reproduce the same weights and metrics.
Writes ``demo_model.pt`` (a state dict) and ``demo_model.json`` (spec,
hyper-parameters, held-out metrics, checksum).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inference.augment import FLIPS
from inference.devices import configure_cpu_threads
from inference.loader import load_model
from inference.spec import ModelSpec
from inference.synthetic import DEMO_LABELS, generate_dataset
from inference.training import EvalResult, evaluate, save_weights, train_model

WEIGHTS_FILENAME = "demo_model.pt"
CARD_FILENAME = "demo_model.json"
SYNTHETIC_IMAGE_SIZE = 128
_SPLITS = ("train", "validation", "test")


def demo_spec(input_size: int = 96) -> ModelSpec:
    """The demo architecture: MobileNetV3-Small at half width, small enough to ship in the repo."""
    return ModelSpec(
        architecture="mobilenet_v3_small",
        labels=DEMO_LABELS,
        input_size=input_size,
        arch_kwargs=(("width_mult", 0.5),),
    )


def split_seed(seed: int, split: str) -> int:
    """An independent data seed per split, so no split's images reappear in another."""
    return int(np.random.SeedSequence([seed, _SPLITS.index(split)]).generate_state(1)[0])


def generate_splits(counts: dict[str, int], seed: int) -> dict[str, list[tuple[Image.Image, str]]]:
    """Each split generated from its own seed, at the size upstream cameras would send."""
    return {
        split: generate_dataset(
            counts[split], seed=split_seed(seed, split), size=SYNTHETIC_IMAGE_SIZE
        )
        for split in _SPLITS
    }


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=1400)
    parser.add_argument("--n-val", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; fixed so a rerun reproduces the weights exactly",
    )
    return parser.parse_args(argv)


def _print_progress(epoch: int, loss: float, val_accuracy: float | None) -> None:
    shown = "n/a" if val_accuracy is None else f"{val_accuracy:.3f}"
    print(f"epoch {epoch:2d}  loss {loss:.4f}  val accuracy {shown}", flush=True)


def _model_card(
    spec: ModelSpec,
    arguments: argparse.Namespace,
    hyperparameters: dict[str, Any],
    test: EvalResult,
    sha256: str,
    timings: dict[str, float],
) -> dict[str, Any]:
    return {
        **spec.to_dict(),
        "weights_file": WEIGHTS_FILENAME,
        "sha256": sha256,
        "seed": arguments.seed,
        "hyperparameters": hyperparameters,
        "data": {
            "generator": "inference.synthetic.generate_dataset",
            "image_size": SYNTHETIC_IMAGE_SIZE,
            "split_seeds": {split: split_seed(arguments.seed, split) for split in _SPLITS},
        },
        "n_train": arguments.n_train,
        "n_val": arguments.n_val,
        "n_test": arguments.n_test,
        "held_out_accuracy": round(test.accuracy, 6),
        "held_out_per_class_accuracy": {
            label: None if accuracy is None else round(accuracy, 6)
            for label, accuracy in test.per_class_accuracy().items()
        },
        "held_out_confusion": [list(row) for row in test.confusion],
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "timings_seconds": {name: round(value, 1) for name, value in timings.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parse_arguments(argv)
    configure_cpu_threads(arguments.threads)
    started = time.perf_counter()
    spec = demo_spec(arguments.input_size)
    counts = {"train": arguments.n_train, "validation": arguments.n_val, "test": arguments.n_test}
    splits = generate_splits(counts, arguments.seed)
    generated = time.perf_counter()
    print(f"generated {sum(counts.values())} images in {generated - started:.1f}s", flush=True)

    cpu_before_training = time.process_time()
    train_images, train_labels = zip(*splits["train"], strict=True)
    validation = splits["validation"]
    result = train_model(
        spec,
        train_images,
        train_labels,
        epochs=arguments.epochs,
        seed=arguments.seed,
        lr=arguments.lr,
        batch_size=arguments.batch_size,
        augment=FLIPS,  # surface defects seen from above: a flip keeps the class
        val_images=[image for image, _ in validation] or None,
        val_labels=[label for _, label in validation] or None,
        num_threads=arguments.threads,
        progress=_print_progress,
    )
    trained = time.perf_counter()
    print(
        f"trained in {trained - generated:.1f}s "
        f"({time.process_time() - cpu_before_training:.1f} CPU seconds)",
        flush=True,
    )

    out_dir: Path = arguments.out_dir
    weights_path = out_dir / WEIGHTS_FILENAME
    sha256 = save_weights(result.state_dict, weights_path)
    reloaded = load_model(spec, weights_path, expected_sha256=sha256)
    test_images, test_labels = zip(*splits["test"], strict=True)
    test = evaluate(reloaded, test_images, test_labels)
    finished = time.perf_counter()

    timings = {
        "generate": generated - started,
        "train": trained - generated,
        "evaluate": finished - trained,
        "total": finished - started,
    }
    card = _model_card(spec, arguments, result.hyperparameters, test, sha256, timings)
    (out_dir / CARD_FILENAME).write_text(json.dumps(card, indent=2) + "\n")
    print(
        f"held-out accuracy {test.accuracy:.4f} on {test.n} images; per class "
        + ", ".join(
            f"{label} {value:.3f}" for label, value in card["held_out_per_class_accuracy"].items()
        )
    )
    print(f"wrote {weights_path} ({weights_path.stat().st_size / 1e6:.2f} MB, sha256 {sha256})")
    print(f"total {timings['total']:.1f}s (train {timings['train']:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
