"""Push N demo images through the REST API and a real worker; compare with a bare PyTorch loop.

Starts its own platform (gunicorn + one Celery worker) in a temporary folder, on the
embedded default (SQLite + filesystem broker) or, when DATABASE_URL and
CELERY_BROKER_URL are set, on those. Prints cases per second, decision-latency
percentiles, and the raw throughput of the same model on the same images in a bare
loop, measured in the same run.

    python bench/throughput.py --cases 200 [--concurrency 8] [--batch 16]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
QUEUES = "inference,default"
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def demo_images(n: int) -> list[bytes]:
    from inference.synthetic import generate_dataset

    out = []
    for image, _ in generate_dataset(n, seed=4242):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def bare_loop(images: list[bytes], batch: int) -> dict[str, float]:
    """The same model on the same images, no web, no queue, no database."""
    from PIL import Image

    from inference.devices import resolve_device
    from inference.loader import load_model
    from inference.spec import ModelSpec

    card = json.loads((ROOT / "inference/assets/demo_model.json").read_text())
    spec = ModelSpec.from_dict(card)
    device = resolve_device(os.environ.get("LOOPGATE_INFERENCE_DEVICE", "auto"))
    model = load_model(spec, ROOT / "inference/assets/demo_model.pt", device=device)
    decoded = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
    model.predict(decoded[:batch])  # warm-up
    results = {}
    for size in (1, batch):
        started = time.perf_counter()
        for i in range(0, len(decoded), size):
            model.predict(decoded[i : i + size])
        results[f"batch {size}"] = len(decoded) / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(0, len(images), batch):
        chunk = [Image.open(io.BytesIO(b)).convert("RGB") for b in images[i : i + batch]]
        model.predict(chunk)
    results[f"batch {batch} incl. PNG decode"] = len(images) / (time.perf_counter() - started)
    results["device"] = device  # type: ignore[assignment]
    return results


class Platform:
    def __init__(self, workdir: Path, port: int, batch: int):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "loopgate.settings",
            "DJANGO_DEBUG": "1",
            "DJANGO_SECRET_KEY": "bench-only-secret",
            "LOOPGATE_VAR_DIR": str(workdir),
            "LOOPGATE_INFERENCE_BATCH_SIZE": str(batch),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            # The bench measures the pipeline, not the API's rate limit.
            "LOOPGATE_THROTTLE_TOKEN_RATE": "1000000/min",
        }
        self.port = port
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def start(self) -> dict:
        if "DATABASE_URL" in os.environ and os.environ["DATABASE_URL"].startswith("postgres"):
            self.manage("flush", "--noinput")
        if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
            # Messages an earlier run left behind would name cases the flush removed.
            subprocess.run(
                [sys.executable, "-m", "celery", "-A", "loopgate", "purge", "-f", "-Q", QUEUES],
                cwd=ROOT,
                env=self.env,
                check=True,
                capture_output=True,
            )
        self.manage("migrate", "--noinput")
        creds = json.loads(self.manage("bootstrap_demo", "--json", "--level", "full"))
        log = (self.workdir / "worker.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "loopgate",
                    "worker",
                    "-Q",
                    QUEUES,
                    "-c",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",  # "celery@host ready." is logged at INFO
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        self.processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "loopgate.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        while b"ready." not in (self.workdir / "worker.log").read_bytes():
            if self.processes[0].poll() is not None:
                log = (self.workdir / "worker.log").read_text()[-2000:]
                raise RuntimeError(f"worker exited:\n{log}")
            if time.monotonic() > deadline + 300:
                log = (self.workdir / "worker.log").read_text()[-2000:]
                raise RuntimeError(f"worker did not start:\n{log}")
            time.sleep(0.3)
        return creds

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    # A worker finishing its last batch on a busy machine: the figures
                    # are already taken, so do not lose them to a slow shutdown.
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    images = demo_images(args.cases)
    with tempfile.TemporaryDirectory(prefix="loopgate-bench-") as tmp:
        platform = Platform(Path(tmp), free_port(), args.batch)
        creds = platform.start()
        base = f"http://127.0.0.1:{platform.port}"
        headers = {"Authorization": f"Token {creds['api_token']}"}
        url = f"{base}/api/v1/workflows/{creds['workflow']}/cases/"
        try:

            def submit(index: int) -> tuple[str, float]:
                started = time.perf_counter()
                response = requests.post(
                    url,
                    headers=headers,
                    timeout=60,
                    files={"image": (f"{index}.png", images[index], "image/png")},
                    data={"external_id": f"bench-{index}"},
                )
                response.raise_for_status()
                return response.json()["id"], time.perf_counter() - started

            started_at = datetime.now(UTC)
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                submitted = list(pool.map(submit, range(args.cases)))
            ingest_seconds = time.perf_counter() - started
            # Wait on the workflow's counts (one cheap request), not on every case, so
            # the bench's own polling does not take the worker's CPU.
            stats_url = f"{base}/api/v1/workflows/{creds['workflow']}/stats/"
            while time.perf_counter() - started < 1800:
                counts = requests.get(stats_url, headers=headers, timeout=30).json()["counts"]
                if counts["received"] + counts["processing"] == 0:
                    break
                time.sleep(0.25)
            wait_seconds = time.perf_counter() - started
            done: dict[str, dict] = {}
            for case_id, _ in submitted:
                body = requests.get(
                    f"{base}/api/v1/cases/{case_id}/", headers=headers, timeout=30
                ).json()
                if body["status"] in ("decided", "in_review", "failed"):
                    done[case_id] = body
        finally:
            platform.stop()

    def server_time(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    latencies = []
    for body in done.values():
        if body["decision"]:
            decided = server_time(body["decision"]["decided_at"])
            latencies.append((decided - server_time(body["created_at"])).total_seconds())
    # The last case's routing time as the server recorded it: from the first request to
    # the last case routed, independent of how often this script looked.
    last_routed = max((server_time(body["updated_at"]) for body in done.values()), default=None)
    total_seconds = (
        (last_routed - started_at).total_seconds() if last_routed is not None else wait_seconds
    )
    bare = bare_loop(images, args.batch)
    end_to_end = len(done) / total_seconds

    database = (
        "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    )
    broker = (
        "Redis" if os.environ.get("CELERY_BROKER_URL", "").startswith("redis") else "filesystem"
    )
    print(
        f"Loopgate throughput — {args.cases} cases, {database} + {broker} broker, 1 worker, "
        f"batch {args.batch}, {args.concurrency} concurrent clients, device {bare.pop('device')}"
    )
    print(
        f"  ingest (POST, 201)             {args.cases / ingest_seconds:8.1f} cases/s  "
        f"(p50 {percentile([s for _, s in submitted], 50) * 1000:.0f} ms, "
        f"p95 {percentile([s for _, s in submitted], 95) * 1000:.0f} ms per request)"
    )
    print(
        f"  end to end (submit -> decided) {end_to_end:8.1f} cases/s  "
        f"({len(done)}/{args.cases} routed {total_seconds:.1f} s after the first request)"
    )
    if latencies:
        print(
            f"  decision latency               p50 {percentile(latencies, 50):.2f} s   "
            f"p90 {percentile(latencies, 90):.2f} s   p99 {percentile(latencies, 99):.2f} s   "
            f"max {max(latencies):.2f} s"
        )
    for name, rate in bare.items():
        print(f"  bare PyTorch loop, {name:24s} {rate:8.1f} cases/s")
    best = max(v for v in bare.values() if isinstance(v, float))
    print(f"  ratio end-to-end / best bare loop: {end_to_end / best:.2f}")


if __name__ == "__main__":
    main()
