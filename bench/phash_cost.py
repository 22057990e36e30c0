"""What the perceptual hash costs at ingest, and how far copies and distinct images land.

    python bench/phash_cost.py [--n 400]

Times ``workflows.images.image_phash`` on demo images (128 px) and on 1024 px and
3000x2000 photos-like images, and measures the Hamming distances of re-encoded, resized
and re-lit copies (should be <= LOOPGATE_DUPLICATE_MAX_DISTANCE = 4) against distinct
demo images (should be far above it).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.synthetic import DEMO_LABELS, generate_image
from workflows.images import image_phash, phash_distance


def per_image_ms(images: list[Image.Image], repeats: int = 3) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        for image in images:
            image_phash(image)
    return 1000 * (time.perf_counter() - started) / (repeats * len(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400)
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    demo = [generate_image(str(rng.choice(DEMO_LABELS)), rng) for _ in range(options.n)]
    photo = Image.fromarray((rng.random((1024, 1024, 3)) * 255).astype("uint8"))
    large = Image.fromarray((rng.random((2000, 3000, 3)) * 255).astype("uint8"))
    print(
        f"phash per image: 128 px {per_image_ms(demo[:100]):.2f} ms, "
        f"1024 px {per_image_ms([photo] * 10):.2f} ms, "
        f"3000x2000 {per_image_ms([large] * 3, 2):.2f} ms"
    )
    hashes = [image_phash(image) for image in demo]
    distinct = np.array(
        [phash_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    )
    print(
        f"distinct demo images ({distinct.size:,} pairs): min distance {distinct.min()}, "
        f"0.1th percentile {np.percentile(distinct, 0.1):.0f}, pairs <= 4: {(distinct <= 4).sum()}"
    )
    for name, change in (
        ("JPEG q60", lambda im: Image.open(io.BytesIO(_jpeg(im, 60)))),
        ("resized to 100 px", lambda im: im.resize((100, 100))),
        ("brightness +10%", lambda im: ImageEnhance.Brightness(im).enhance(1.1)),
    ):
        d = np.array(
            [phash_distance(image_phash(change(im)), h) for im, h in zip(demo, hashes, strict=True)]
        )
        print(
            f"copies, {name}: mean {d.mean():.2f}, max {d.max()}, within 4: {(d <= 4).mean():.1%}"
        )


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


if __name__ == "__main__":
    main()
