"""What the per-case monitoring measurements cost on the demo images.

    .venv/bin/python bench/measure_bench.py [--n 500]

Prints the median and p95 milliseconds per case of the image measurements (one pass
over the decoded image), the output measurements, and the embedding capture (the demo
model's forward pass with and without the hook), on this machine's CPU.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inference.loader import load_model
from inference.measure import image_measurements, output_measurements
from inference.spec import ModelSpec
from inference.synthetic import generate_dataset

ASSETS = Path(__file__).resolve().parent.parent / "inference" / "assets"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    images = []
    for array, _label in generate_dataset(args.n, seed=7):
        buffer = io.BytesIO()
        array.save(buffer, format="PNG")
        data = buffer.getvalue()
        decoded = Image.open(io.BytesIO(data))
        decoded.load()
        images.append((decoded.convert("RGB"), len(data)))

    image_ms = []
    for image, size in images:
        started = time.perf_counter()
        image_measurements(image, file_size=size, image_format="PNG")
        image_ms.append((time.perf_counter() - started) * 1000)
    output_ms = []
    for _ in range(args.n):
        started = time.perf_counter()
        output_measurements({"ok": 0.7, "scratch": 0.2, "crack": 0.06, "stain": 0.04})
        output_ms.append((time.perf_counter() - started) * 1000)

    import json

    import torch

    torch.set_num_threads(1)
    spec = ModelSpec.from_dict(json.loads((ASSETS / "demo_model.json").read_text()))
    model = load_model(spec, ASSETS / "demo_model.pt")
    batch = [image for image, _ in images[:32]]
    plain, hooked = [], []
    for _ in range(5):
        started = time.perf_counter()
        model.predict(batch)
        plain.append((time.perf_counter() - started) * 1000 / len(batch))
        started = time.perf_counter()
        model.predict_with_embeddings(batch)
        hooked.append((time.perf_counter() - started) * 1000 / len(batch))

    print(f"demo images: {args.n}, {images[0][0].size[0]}x{images[0][0].size[1]} PNG")
    print(
        f"image measurements: median {statistics.median(image_ms):.3f} ms, "
        f"p95 {percentile(image_ms, 95):.3f} ms per case"
    )
    print(f"output measurements: median {statistics.median(output_ms) * 1000:.1f} us per case")
    print(
        f"model forward (batch of 32, 1 thread): {statistics.median(plain):.2f} ms/case plain, "
        f"{statistics.median(hooked):.2f} ms/case with the embedding hook and projection"
    )


if __name__ == "__main__":
    main()
