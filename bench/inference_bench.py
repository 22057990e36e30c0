"""Inference throughput per batch size and device, and how long a retraining run takes.

    .venv/bin/python bench/inference_bench.py [--images 256] [--batch-sizes 1,4,16,64]
        [--train-images 240] [--epochs 2] [--threads N] [--json]

Uses the shipped demo model (inference/assets/demo_model.pt, MobileNetV3-Small x0.5 at
96 px) on synthetic inspection images, through the same ``LoadedModel.predict`` the
workers call (uint8 resize, normalise, softmax; autocast bf16/fp16 on CUDA). Every
device present is measured: the CPU always, CUDA when ``torch.cuda.is_available()``.
The retraining figure runs ``inference.retrain.retrain`` (the code path of a training
run: warm start from the demo weights, a held-out test split, evaluation of the new
model and the baseline) on the same devices. ML core only: no Django, no database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from inference.loader import load_model  # noqa: E402
from inference.retrain import retrain, stratified_split  # noqa: E402
from inference.spec import ModelSpec  # noqa: E402
from inference.synthetic import generate_dataset  # noqa: E402

ASSETS = ROOT / "inference" / "assets"


def demo_model() -> tuple[ModelSpec, Path, str | None]:
    card = json.loads((ASSETS / "demo_model.json").read_text())
    return ModelSpec.from_dict(card), ASSETS / card["weights_file"], card.get("sha256")


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def cuda_path() -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"available": False}
    return {
        "available": True,
        "device": torch.cuda.get_device_name(0),
        "autocast_dtype": "bfloat16" if torch.cuda.is_bf16_supported() else "float16",
        "torch_cuda": torch.version.cuda,
    }


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def inference_figures(
    spec: ModelSpec, weights: Path, sha256: str | None, images: list[Any], batch_sizes: list[int]
) -> list[dict[str, Any]]:
    rows = []
    for device in devices():
        model = load_model(spec, weights, device=device, expected_sha256=sha256)
        for batch_size in batch_sizes:
            model.predict(images[: batch_size * 2], batch_size=batch_size)  # warm up
            synchronise(device)
            started = time.perf_counter()
            model.predict(images, batch_size=batch_size)
            synchronise(device)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "device": device,
                    "batch_size": batch_size,
                    "images": len(images),
                    "images_per_second": len(images) / seconds,
                    "ms_per_image": 1000 * seconds / len(images),
                }
            )
            print(
                f"  inference {device:4} batch {batch_size:>3}: "
                f"{rows[-1]['images_per_second']:8.1f} images/s "
                f"({rows[-1]['ms_per_image']:.2f} ms/image)",
                flush=True,
            )
    return rows


def retraining_figures(
    spec: ModelSpec, weights: Path, sha256: str | None, n: int, epochs: int, threads: int | None
) -> list[dict[str, Any]]:
    data = generate_dataset(n, seed=777)
    keyed = {f"case-{i:05}": pair for i, pair in enumerate(data)}
    split = stratified_split(
        [(key, label) for key, (_, label) in keyed.items()], test_share=0.2, val_share=0.1, seed=1
    )

    def part(keys: tuple[str, ...]) -> tuple[list[Any], list[str]]:
        return [keyed[k][0] for k in keys], [keyed[k][1] for k in keys]

    rows = []
    for device in devices():
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            outcome = retrain(
                spec,
                train=part(split.train),
                val=part(split.val),
                test=part(split.test),
                out_path=Path(folder) / "retrained.pt",
                seed=3,
                epochs=epochs,
                lr=1e-3,
                batch_size=32,
                base_weights=(weights, sha256 or ""),
                device=device,
                num_threads=threads,
            )
            total = time.perf_counter() - started
        rows.append(
            {
                "device": device,
                "train_images": len(split.train),
                "epochs": epochs,
                "train_seconds": outcome.train_seconds,
                "total_seconds": total,
                "train_images_per_second": len(split.train) * epochs / outcome.train_seconds,
                "test_accuracy": outcome.test["accuracy"],
                "baseline_test_accuracy": outcome.baseline_test["accuracy"],
                "mixed_precision": outcome.hyperparameters["mixed_precision"],
            }
        )
        row = rows[-1]
        print(
            f"  retrain   {device:4}: {row['train_images']} images x {epochs} epochs in "
            f"{row['train_seconds']:.1f} s ({row['train_images_per_second']:.1f} images/s), "
            f"{row['total_seconds']:.1f} s with evaluation; held-out accuracy "
            f"{row['test_accuracy']:.3f} (demo model before: {row['baseline_test_accuracy']:.3f})",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-sizes", default="1,4,16,64")
    parser.add_argument("--train-images", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch).")
    parser.add_argument("--json", action="store_true", help="Also print one JSON object.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec, weights, sha256 = demo_model()
    print(
        f"Loopgate inference bench: {spec.architecture} {spec.arch_kwargs_dict()} at "
        f"{spec.input_size} px; torch {torch.__version__}; {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        flush=True,
    )
    cuda = cuda_path()
    print(
        "  CUDA path: "
        + (
            f"{cuda['device']}, autocast {cuda['autocast_dtype']}, CUDA {cuda['torch_cuda']}"
            if cuda["available"]
            else "no GPU here; the same code runs on CUDA with autocast (bf16/fp16) when present"
        ),
        flush=True,
    )
    images = [image for image, _ in generate_dataset(args.images, seed=4242)]
    batch_sizes = [int(size) for size in args.batch_sizes.split(",") if size]
    summary = {
        "model": spec.to_dict(),
        "cuda": cuda,
        "torch_threads": torch.get_num_threads(),
        "inference": inference_figures(spec, weights, sha256, images, batch_sizes),
        "retraining": retraining_figures(
            spec, weights, sha256, args.train_images, args.epochs, args.threads
        ),
    }
    if args.json:
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
