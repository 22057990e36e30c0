"""Bulk ingest vs one request per image: accepted images per second.

Starts its own platform (gunicorn + one Celery worker, as ``bench/throughput.py``),
then submits the same N demo images three ways and prints the ingest rate of each:
one request per image from 1 and from 8 client threads, and ``POST …/cases/bulk/``
with ``--chunk`` images per request. Each way uses its own external ids, so nothing
is de-duplicated away.

    python bench/bulk_ingest.py --cases 500 [--chunk 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import Platform, demo_images, free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    images = demo_images(args.cases)
    rows = []
    with tempfile.TemporaryDirectory(prefix="loopgate-bench-") as tmp:
        platform = Platform(Path(tmp), free_port(), 16)
        creds = platform.start()
        base = f"http://127.0.0.1:{platform.port}/api/v1/workflows/{creds['workflow']}"
        headers = {"Authorization": f"Token {creds['api_token']}"}
        try:
            for threads in (1, 8):
                tag = f"single{threads}"

                def submit(index: int, tag: str = tag) -> int:
                    response = requests.post(
                        f"{base}/cases/",
                        headers=headers,
                        timeout=60,
                        files={"image": (f"{index}.png", images[index], "image/png")},
                        data={"external_id": f"{tag}-{index}"},
                    )
                    return response.status_code

                started = time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    statuses = list(pool.map(submit, range(args.cases)))
                seconds = time.perf_counter() - started
                accepted = sum(status == 201 for status in statuses)
                rows.append((f"one request per image, {threads} thread(s)", accepted, seconds))

            started = time.perf_counter()
            accepted = 0
            for start in range(0, args.cases, args.chunk):
                chunk = range(start, min(start + args.chunk, args.cases))
                manifest = [{"file": f"{i}.png", "external_id": f"bulk-{i}"} for i in chunk]
                response = requests.post(
                    f"{base}/cases/bulk/",
                    headers=headers,
                    timeout=600,
                    files=[("images", (f"{i}.png", images[i], "image/png")) for i in chunk],
                    data={"manifest": json.dumps(manifest)},
                )
                assert response.status_code == 207, response.text[:500]
                accepted += response.json()["created"]
            seconds = time.perf_counter() - started
            rows.append((f"bulk, {args.chunk} images per request, 1 thread", accepted, seconds))
        finally:
            platform.stop()
    print(f"{args.cases} demo images (PNG, ~{sum(map(len, images)) // len(images)} bytes each)")
    for name, accepted, seconds in rows:
        print(f"{name:48} {accepted:5} accepted in {seconds:6.1f} s = {accepted / seconds:6.1f}/s")


if __name__ == "__main__":
    main()
