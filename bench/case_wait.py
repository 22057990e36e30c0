"""Time to know a case's routing: ``POST …/cases/?wait=N`` vs POST then polling.

Starts its own platform (gunicorn + one Celery worker, as ``bench/throughput.py``) at
``full``, then submits ``--cases`` images one at a time (a line controller waiting for
each answer) two ways: with ``?wait=10``, and with a plain POST followed by
``GET /api/v1/cases/{id}/`` every ``--poll`` seconds until routed. Prints p50/p95 of
the time from sending the image to holding the routed case, for both.

    python bench/case_wait.py --cases 100 [--poll 0.1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import Platform, demo_images, free_port, percentile  # noqa: E402

ROUTED = {"decided", "in_review", "failed"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--poll", type=float, default=0.1)
    args = parser.parse_args()
    images = demo_images(args.cases * 2)
    timings: dict[str, list[float]] = {"wait": [], "poll": []}
    unrouted = {"wait": 0, "poll": 0}
    polls = 0
    with tempfile.TemporaryDirectory(prefix="loopgate-bench-") as tmp:
        platform = Platform(Path(tmp), free_port(), 16)
        creds = platform.start()
        base = f"http://127.0.0.1:{platform.port}/api/v1"
        url = f"{base}/workflows/{creds['workflow']}/cases/"
        session = requests.Session()
        session.headers["Authorization"] = f"Token {creds['api_token']}"
        try:
            for i in range(args.cases * 2):
                mode = "wait" if i % 2 == 0 else "poll"
                files = {"image": (f"{i}.png", images[i], "image/png")}
                started = time.perf_counter()
                if mode == "wait":
                    body = session.post(f"{url}?wait=10", files=files, timeout=30).json()
                else:
                    body = session.post(url, files=files, timeout=30).json()
                    while body["status"] not in ROUTED and time.perf_counter() - started < 10:
                        time.sleep(args.poll)
                        polls += 1
                        body = session.get(f"{base}/cases/{body['id']}/", timeout=30).json()
                elapsed = time.perf_counter() - started
                if body["status"] in ROUTED:
                    timings[mode].append(elapsed * 1000)
                else:
                    unrouted[mode] += 1
        finally:
            platform.stop()
    print(f"{args.cases} cases each way, one at a time, level full, poll every {args.poll}s")
    for mode, values in timings.items():
        print(
            f"{mode:5} POST -> routed case: p50 {statistics.median(values):6.0f} ms, "
            f"p95 {percentile(values, 95):6.0f} ms, not routed in 10 s: {unrouted[mode]}"
        )
    print(f"polling made {polls} extra GET requests ({polls / max(args.cases, 1):.1f} per case)")


if __name__ == "__main__":
    main()
