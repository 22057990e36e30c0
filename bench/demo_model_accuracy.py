"""The shipped demo model's accuracy on what users will see, against its held-out split.

    python bench/demo_model_accuracy.py [--n 2000]

Scores inference/assets/demo_model.pt (through the serving predictor) on: the model
card's held-out split (600 images), fresh images of the same generator (two seeds), and
the demo stream exactly as ``manage.py demo_stream`` makes it (seed 1, PNG round trip),
with exact 95% intervals, per class, and on the stream's first 263 cases.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decisions.stats import clopper_pearson
from inference.loader import load_model
from inference.spec import ModelSpec
from inference.synthetic import DEFAULT_CLASS_WEIGHTS, DEMO_LABELS, generate_dataset, generate_image

ASSETS = Path(__file__).resolve().parents[1] / "inference" / "assets"


def demo_stream(seed: int, count: int) -> list[tuple[Image.Image, str]]:
    """The images and labels of ``manage.py demo_stream --seed seed`` (same draws)."""
    labels = list(DEMO_LABELS)
    weights = np.array([DEFAULT_CLASS_WEIGHTS[label] for label in labels], dtype=float)
    label_rng = np.random.default_rng([seed, 1])
    out = []
    for child in np.random.SeedSequence([seed, 2]).spawn(count):
        label = str(label_rng.choice(labels, p=weights / weights.sum()))
        buffer = io.BytesIO()
        generate_image(label, np.random.default_rng(child)).save(buffer, format="PNG")
        out.append((Image.open(io.BytesIO(buffer.getvalue())), label))
    return out


def report(name: str, model, data) -> np.ndarray:
    results = model.predict([image for image, _ in data])
    right = np.array([r.label == label for r, (_, label) in zip(results, data, strict=True)])
    interval = clopper_pearson(int(right.sum()), len(right), 0.95)
    per_class = ", ".join(
        f"{label} {right[[truth == label for _, truth in data]].mean():.3f}"
        for label in DEMO_LABELS
    )
    print(
        f"{name:<38} n={len(right):>5}  accuracy {right.mean():.4f} "
        f"[{interval.low:.3f}, {interval.high:.3f}]  ({per_class})"
    )
    return right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    options = parser.parse_args()
    torch.set_num_threads(1)
    card = json.loads((ASSETS / "demo_model.json").read_text())
    spec = ModelSpec(
        card["architecture"],
        tuple(card["labels"]),
        card["input_size"],
        tuple(card["mean"]),
        tuple(card["std"]),
        tuple(sorted(card["arch_kwargs"].items())),
    )
    model = load_model(spec, ASSETS / card["weights_file"], expected_sha256=card["sha256"])
    held_out = generate_dataset(600, seed=card["data"]["split_seeds"]["test"], size=128)
    report("model card's held-out split", model, held_out)
    fresh = [*generate_dataset(options.n, seed=12345), *generate_dataset(options.n, seed=777)]
    report("fresh images, same generator", model, fresh)
    stream = demo_stream(1, options.n)
    right = report("demo_stream --seed 1", model, stream)
    print(f"{'demo_stream --seed 1, first 263':<38} accuracy {right[:263].mean():.4f}")


if __name__ == "__main__":
    main()
