"""Push N demo images through the REST API and a real worker; compare with a bare PyTorch loop.

Starts its own platform (gunicorn, an inference worker and a worker for the default and
training queues, as in production) in a temporary folder, on the embedded default
(SQLite + filesystem broker) or, when DATABASE_URL and CELERY_BROKER_URL are set, on
those. Prints cases per second, decision-latency percentiles, the CPU time every process
spent per case (read from /proc), and the raw throughput of the same model on the same
images in a bare loop, measured in the same run.

    python bench/throughput.py --cases 300 [--concurrency 8] [--batch 16] [--json]
    python bench/throughput.py --model resnet18 --runtime onnx --cases 300 --json
    python bench/throughput.py --cases 600 --rate 40 --json          # paced, for latency
    python bench/throughput.py --web-processes 2 --inference-workers 2 --json  # scale-out

The platform runs with production settings (``DJANGO_DEBUG=0``; with a Redis broker,
the cache on Redis too, as ``compose.yaml`` sets it). Without ``--rate`` the clients send
as fast as they can (the sustainable rate; latency is then the queue that builds); with
``--rate R`` they send R cases per second on a fixed schedule (an open loop: a slow
answer does not slow the schedule), which is how decision latency is measured, at a
load the machine sustains.

``--model resnet18`` registers a ResNet-18 at 224 px (seeded random weights: the speed
of a model does not depend on what it learnt) with ``manage.py register_model`` and
promotes it to serving with the deployment service, so the platform serves a real-size
model; ``--runtime`` is the runtime it is registered with. The load client keeps one
HTTP connection per client thread and builds every body before the clock starts, so it
costs little CPU.

``--prefill N`` gives the demo workflow N earlier cases (decided, a day old, with the
perceptual hashes of N other demo images) before the run, so that a run measures a
workflow in use rather than an empty table: what grows with the table (the near-copy
lookup, the indexes an INSERT updates) shows in the figures.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
QUEUES = "inference,training,default"
sys.path.insert(0, str(ROOT))
RESNET_SIZE = 224
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> set[int]:
    """``root`` and every process below it (children of every thread)."""
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo += [int(child) for child in children.read_text().split()]
            except OSError:
                continue
    return seen


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """utime + stime of ``pid`` (and of its reaped children) from /proc, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def pids_named(name: str) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            if stat.read_text().strip() == name:
                out.append(int(stat.parent.name))
        except OSError:
            continue
    return out


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


def prefill_cases(slug: str, count: int) -> None:
    """Inside the platform's settings (``Platform.prefill``): ``count`` decided cases a
    day old in workflow ``slug``, written in batches, then ANALYZE (as autovacuum would
    soon do on a table in use)."""
    import uuid
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from inference.synthetic import generate_dataset
    from workflows.images import image_phash
    from workflows.models import Case, Workflow

    workflow = Workflow.objects.get(slug=slug)
    start = timezone.now() - timedelta(days=1)
    batch: list[Case] = []
    for index, (image, label) in enumerate(generate_dataset(count, seed=90210)):
        batch.append(
            Case(
                id=uuid.uuid4(),
                workflow=workflow,
                image=f"cases/{slug}/prefill.png",
                image_format="PNG",
                image_width=image.width,
                image_height=image.height,
                image_bytes=1,
                image_sha256="0" * 64,
                phash=image_phash(image),
                status="decided",
                decision_label=label,
                decision_source="model",
                decided_at=start + timedelta(milliseconds=index),
                routed_level=workflow.level,
            )
        )
        if len(batch) == 2000 or index == count - 1:
            created = Case.objects.bulk_create(batch)
            Case.objects.filter(pk__in=[case.pk for case in created]).update(created_at=start)
            batch = []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE workflows_case")


def demo_spec() -> object:
    from inference.spec import ModelSpec

    return ModelSpec.from_dict(json.loads((ROOT / "inference/assets/demo_model.json").read_text()))


def resnet_spec() -> object:
    from inference.spec import ModelSpec

    labels = tuple(json.loads((ROOT / "inference/assets/demo_model.json").read_text())["labels"])
    return ModelSpec(architecture="resnet18", labels=labels, input_size=RESNET_SIZE)


def resnet_weights(path: Path) -> Path:
    """A seeded, randomly initialised ResNet-18 state dict with the demo's four labels."""
    import torch

    from inference.architectures import build_model

    torch.manual_seed(18)
    torch.save(build_model(resnet_spec()).state_dict(), path)  # type: ignore[arg-type]
    return path


def bare_loop(images: list[bytes], batch: int, model_name: str, weights: Path) -> dict[str, float]:
    """The same model on the same images, no web, no queue, no database: eager PyTorch,
    batch ``batch``, with and without the PNG decode."""
    from PIL import Image

    from inference.devices import resolve_device
    from inference.loader import load_model

    spec = resnet_spec() if model_name == "resnet18" else demo_spec()
    device = resolve_device(os.environ.get("LOOPGATE_INFERENCE_DEVICE", "auto"))
    model = load_model(spec, weights, device=device)  # type: ignore[arg-type]
    decoded = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
    model.predict(decoded[:batch])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(decoded), batch):
        model.predict(decoded[i : i + batch])
    results: dict[str, float] = {"no_decode": len(decoded) / (time.perf_counter() - started)}
    started = time.perf_counter()
    for i in range(0, len(images), batch):
        chunk = [Image.open(io.BytesIO(b)).convert("RGB") for b in images[i : i + batch]]
        model.predict(chunk)
    results["with_decode"] = len(images) / (time.perf_counter() - started)
    results["threads"] = torch_threads()
    return results


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def bare_loops(cases: int, batch: int, model_name: str, weights: Path) -> dict[str, dict]:
    """The bare loop twice, each in a fresh process: as a user would write it (torch's
    default threads and waiting), and with the platform's thread discipline (passive
    waiting, the thread policy's count). The better one is the bar the platform is held to."""
    from inference.devices import available_cores, cpu_threads_policy

    # The models' parameter counts (ResNet-18 with four outputs; the demo's MobileNetV3).
    parameters = 11_178_564 if model_name == "resnet18" else 406_316
    disciplined = cpu_threads_policy(cores=available_cores(), parameters=parameters)
    base_env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")
    }
    runs = {
        "default": base_env,
        "disciplined": {
            **base_env,
            "OMP_WAIT_POLICY": "PASSIVE",
            "OMP_NUM_THREADS": str(disciplined),
        },
    }
    out = {}
    for name, env in runs.items():
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--bare-only",
                "--cases",
                str(cases),
                "--batch",
                str(batch),
                "--model",
                model_name,
                "--weights",
                str(weights),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


class Platform:
    def __init__(
        self,
        workdir: Path,
        port: int,
        batch: int,
        web_processes: int = 2,
        inference_workers: int = 1,
        web_threads: int = 4,
    ):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "loopgate.settings",
            # Production settings: DEBUG keeps every SQL statement's text in memory.
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECRET_KEY": "bench-only-secret",
            "LOOPGATE_VAR_DIR": str(workdir),
            "LOOPGATE_INFERENCE_BATCH_SIZE": str(batch),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            # The bench measures the pipeline, not the API's rate limit.
            "LOOPGATE_THROTTLE_TOKEN_RATE": "1000000/min",
            # Registering a ResNet-18 on a busy 2-core machine: export and compare in time.
            "LOOPGATE_MODEL_CHECK_TIMEOUT_SECONDS": "900",
        }
        broker = os.environ.get("CELERY_BROKER_URL", "")
        if broker.startswith("redis") and "LOOPGATE_CACHE_URL" not in os.environ:
            self.env["LOOPGATE_CACHE_URL"] = broker
        self.port = port
        self.workdir = workdir
        self.web_processes = web_processes
        self.web_threads = web_threads
        self.inference_workers = inference_workers
        self.processes: list[subprocess.Popen[bytes]] = []

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout

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
        return creds

    def prefill(self, workflow: str, count: int) -> None:
        """Give ``workflow`` ``count`` earlier cases: decided a day ago, each with the
        perceptual hash of a demo image other than the bench's (``prefill_cases``)."""
        self.manage(
            "shell",
            "-c",
            f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
            f"from throughput import prefill_cases; prefill_cases({workflow!r}, {count})",
        )

    def serve(self) -> None:
        """Start the workers (inference apart from the default and training queues, as
        in production) and the web server; return once all of them are ready."""
        workers = [(f"inference{index}", "inference") for index in range(self.inference_workers)]
        for name, queues in [*workers, ("default", "default,training")]:
            log = (self.workdir / f"worker-{name}.log").open("wb")
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
                        queues,
                        "-c",
                        "1",
                        "-n",
                        f"{name}@%h",
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
                    str(self.web_processes),
                    "--threads",
                    str(self.web_threads),
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
        for name, _ in [*workers, ("default", "")]:
            log_path = self.workdir / f"worker-{name}.log"
            while b"ready." not in log_path.read_bytes():
                if any(process.poll() is not None for process in self.processes):
                    raise RuntimeError(f"a worker exited:\n{log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline + 300:
                    raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.3)
        # The pool processes load the serving model in the background: wait for them.
        for name, _ in workers:
            log_path = self.workdir / f"worker-{name}.log"
            while (
                b"torch threads" not in log_path.read_bytes() and time.monotonic() < deadline + 300
            ):
                time.sleep(0.3)
        time.sleep(5)

    def groups(self) -> dict[str, set[int]]:
        """The pids of the web server and each worker (with their pool processes)."""
        *inference, worker_default, web = self.processes[: self.inference_workers + 2]
        return {
            "web": process_tree(web.pid),
            "worker_inference": set().union(*(process_tree(w.pid) for w in inference)),
            "worker_default": process_tree(worker_default.pid),
        }

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}"
            for path in sorted(self.workdir.glob("worker-*.log"))
        )


LABELLED_CASES = """
import io
from django.utils import timezone
from inference.synthetic import generate_dataset
from workflows.models import Case, CaseStatus, Workflow
from workflows.services import case_store
workflow = Workflow.objects.get(slug="surface-inspection")
for index, (image, label) in enumerate(generate_dataset({n}, seed=77)):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    case = case_store(workflow=workflow, image_data=buffer.getvalue(),
                      external_id=f"labelled-{{index}}", metadata={{}}, submitted_by=None).case
    Case.objects.filter(pk=case.pk).update(
        status=CaseStatus.DECIDED, human_label=label, labelled_at=timezone.now())
"""


def register_version(platform: Platform, model: str, weights: Path, runtime: str) -> dict:
    """Register the model with the platform's command and promote it to serving: the
    ResNet-18, or the demo's own weights again with another runtime."""
    if model == "resnet18":
        described = ["--name", "resnet18-bench", "--architecture", "resnet18"]
        described += ["--input-size", str(RESNET_SIZE)]
    else:
        card = json.loads((ROOT / "inference/assets/demo_model.json").read_text())
        described = ["--name", f"demo-{runtime}", "--architecture", card["architecture"]]
        described += ["--input-size", str(card["input_size"])]
        described += ["--arch-kwargs", json.dumps(card.get("arch_kwargs") or {})]
        described += ["--mean", *map(str, card["mean"]), "--std", *map(str, card["std"])]
    if runtime != "eager":
        # The runtime check compares (and int8 calibrates) on the workflow's newest
        # labelled cases, as it would in production: give it 64 demo images with their
        # true labels (other images than the measured ones).
        platform.manage("shell", "-c", LABELLED_CASES.format(n=64))
    version = json.loads(
        platform.manage(
            "register_model",
            "--workflow",
            "surface-inspection",
            *described,
            "--weights",
            str(weights),
            "--runtime",
            runtime,
            "--deploy-as",
            "shadow",
            "--reason",
            "throughput bench",
        )
    )
    platform.manage(
        "shell",
        "-c",
        "from modelops.services import deployment_promote; "
        "from workflows.models import Workflow; "
        "deployment_promote(workflow=Workflow.objects.get(slug='surface-inspection'), "
        "actor=None, reason='throughput bench')",
    )
    return version


BOUNDARY = "loopgate-bench-boundary"


def multipart_body(image: bytes, external_id: str) -> bytes:
    """The POST body of one case (multipart: the image and its external_id), built
    before the clock starts so that the load client spends nothing on encoding."""
    return b"".join(
        [
            f"--{BOUNDARY}\r\n".encode(),
            f'Content-Disposition: form-data; name="image"; filename="{external_id}.png"\r\n'
            "Content-Type: image/png\r\n\r\n".encode(),
            image,
            f"\r\n--{BOUNDARY}\r\n".encode(),
            b'Content-Disposition: form-data; name="external_id"\r\n\r\n',
            external_id.encode(),
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        ]
    )


class Client:
    """The load client: one kept-alive HTTP connection per client thread
    (``http.client``), bodies built beforehand, so that it takes little of the CPU the
    platform runs on (a ``requests`` session with its multipart encoder cost 0.8 to 0.9 ms
    per case, about a tenth of the whole machine's)."""

    def __init__(self, base: str, token: str) -> None:
        parsed = urlsplit(base)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        self.get_headers = {"Authorization": f"Token {token}"}
        self.local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        if not hasattr(self.local, "connection"):
            self.local.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.local.connection

    def request(self, method: str, path: str, body: bytes | None, headers: dict) -> bytes:
        for attempt in (1, 2):
            connection = self.connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed a kept-alive connection (gunicorn's keepalive): reopen.
                connection.close()
                del self.local.connection
                if attempt == 2:
                    raise
                continue
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {content[:300]!r}")
            return content
        raise AssertionError("unreachable")

    def submit(self, path: str, body: bytes) -> tuple[str, float]:
        started = time.perf_counter()
        content = self.request("POST", path, body, self.headers)
        return json.loads(content)["id"], time.perf_counter() - started

    def get(self, path: str) -> dict:
        return json.loads(self.request("GET", path, None, self.get_headers))


def wait_routed(client: Client, stats_url: str, limit: float) -> None:
    """Wait on the workflow's counts (one cheap request a quarter second), not on every
    case, so the bench's own polling does not take the worker's CPU."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        counts = client.get(stats_url)["counts"]
        if counts["received"] + counts["processing"] == 0:
            return
        time.sleep(0.25)


def cpu_snapshot(groups: dict[str, set[int]], database: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of every process in each group: the platform's processes, the
    PostgreSQL backends serving its database, Redis (a server others share) and this
    client."""
    snapshot = {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()}
    backends = postgres_backends(database)
    snapshot["postgres"] = {pid: cpu_seconds(pid) for pid in backends}
    # Backends that end between two snapshots (a worker's connection closed after a
    # task) are not in either: the postmaster reaps them, so their CPU is in its
    # children's time (``cpu_used`` takes out what the snapshot before had of them).
    snapshot["postgres_reaped"] = {pid: reaped_seconds(pid) for pid in postmasters(backends)}
    snapshot["redis"] = {pid: cpu_seconds(pid) for pid in pids_named("redis-server")}
    snapshot["client"] = {os.getpid(): cpu_seconds(os.getpid())}
    return snapshot


def postgres_backends(database: str) -> list[int]:
    if not database:
        return []
    try:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return [row[0] for row in rows]
    except Exception:  # noqa: BLE001 - no PostgreSQL, no figure
        return []


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict:
    """CPU seconds per group between two snapshots (a process that appeared counts whole;
    PostgreSQL backends that ended in between count through the postmaster)."""
    used = {}
    for name, pids in after.items():
        if name == "postgres_reaped":
            continue
        used[name] = sum(
            max(0.0, seconds - before.get(name, {}).get(pid, 0.0)) for pid, seconds in pids.items()
        )
    reaped = sum(
        seconds - before.get("postgres_reaped", {}).get(pid, seconds)
        for pid, seconds in after.get("postgres_reaped", {}).items()
    )
    ended = sum(
        seconds
        for pid, seconds in before.get("postgres", {}).items()
        if pid not in after.get("postgres", {})
    )
    if "postgres" in used:
        used["postgres"] += max(0.0, reaped - ended)
    return used


def postmasters(backends: list[int]) -> set[int]:
    """The parents of these PostgreSQL backends (the postmaster)."""
    parents = set()
    for pid in backends:
        try:
            parents.add(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return parents


def reaped_seconds(pid: int) -> float:
    """The CPU of ``pid``'s children that ended and were reaped, from /proc, in seconds."""
    return cpu_seconds(pid, with_children=True) - cpu_seconds(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--model", choices=("demo", "resnet18"), default="demo")
    parser.add_argument("--runtime", choices=("eager", "onnx", "onnx_int8"), default="eager")
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per process")
    parser.add_argument("--inference-workers", type=int, default=1)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="Cases per second on a fixed schedule (0: flat out).",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="Earlier cases the workflow holds before the run (a workflow in use).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--bare-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_only:
        print(json.dumps(bare_loop(demo_images(args.cases), args.batch, args.model, args.weights)))
        return

    images = demo_images(args.cases)
    warm_images = demo_images(args.batch)
    database_url = os.environ.get("DATABASE_URL", "")
    database = database_url.rsplit("/", 1)[-1] if database_url.startswith("postgres") else ""
    with tempfile.TemporaryDirectory(prefix="loopgate-bench-") as tmp:
        platform = Platform(
            Path(tmp),
            free_port(),
            args.batch,
            args.web_processes,
            args.inference_workers,
            web_threads=args.web_threads,
        )
        creds = platform.start()
        if args.prefill:
            platform.prefill(creds["workflow"], args.prefill)
        weights = ROOT / "inference/assets/demo_model.pt"
        version: dict = {"tag": "demo", "runtime": "eager"}
        if args.model == "resnet18":
            weights = resnet_weights(Path(tmp) / "resnet18.pt")
        if args.model == "resnet18" or args.runtime != "eager":
            version = register_version(platform, args.model, weights, args.runtime)
        platform.serve()
        base = f"http://127.0.0.1:{platform.port}"
        client = Client(base, creds["api_token"])
        url = f"/api/v1/workflows/{creds['workflow']}/cases/"
        stats_url = f"/api/v1/workflows/{creds['workflow']}/stats/"
        bodies = [multipart_body(image, f"bench-{index}") for index, image in enumerate(images)]
        try:
            # Warm the pipeline (the model is loaded, connections are open) off the clock.
            for index, image in enumerate(warm_images):
                client.submit(url, multipart_body(image, f"warm-{index}"))
            wait_routed(client, stats_url, 300)
            before = cpu_snapshot(platform.groups(), database)
            started_at = datetime.now(UTC)
            started = time.perf_counter()

            def send(index: int) -> tuple[str, float]:
                if args.rate > 0:
                    # Open loop: case i leaves at i / rate, whenever the others return.
                    delay = started + index / args.rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                return client.submit(url, bodies[index])

            with ThreadPoolExecutor(args.concurrency) as pool:
                submitted = list(pool.map(send, range(args.cases)))
            ingest_seconds = time.perf_counter() - started
            wait_routed(client, stats_url, 1800)
            wait_seconds = time.perf_counter() - started
            after = cpu_snapshot(platform.groups(), database)
            done: dict[str, dict] = {}
            for case_id, _ in submitted:
                body = client.get(f"/api/v1/cases/{case_id}/")
                if body["status"] in ("decided", "in_review", "failed"):
                    done[case_id] = body
        except BaseException:
            print(platform.logs(), file=sys.stderr)
            raise
        finally:
            platform.stop()
        # With the platform stopped, and while the weights file still exists.
        bare = bare_loops(args.cases, args.batch, args.model, weights)

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
    used = cpu_used(before, after)
    end_to_end = len(done) / total_seconds
    best = max(bare.values(), key=lambda run: run["with_decode"])
    bare_per_s = best["with_decode"]
    from inference.devices import resolve_device

    device = resolve_device(os.environ.get("LOOPGATE_INFERENCE_DEVICE", "auto"))
    database_name = "PostgreSQL" if database else "SQLite"
    broker = (
        "Redis" if os.environ.get("CELERY_BROKER_URL", "").startswith("redis") else "filesystem"
    )
    per_case = {name: round(seconds * 1000 / args.cases, 2) for name, seconds in used.items()}
    result = {
        "date": started_at.isoformat(timespec="seconds"),
        "model": args.model,
        "model_version": version.get("tag"),
        "runtime": version.get("runtime", "eager"),
        "cases": args.cases,
        "routed": len(done),
        "batch": args.batch,
        "concurrency": args.concurrency,
        "web_processes": args.web_processes,
        "web_threads": args.web_threads,
        "inference_workers": args.inference_workers,
        "rate": args.rate or None,
        "prefill": args.prefill,
        "device": device,
        "stack": f"{database_name} + {broker}",
        "cores": os.cpu_count(),
        "ingest_per_s": round(args.cases / ingest_seconds, 1),
        "e2e_per_s": round(end_to_end, 1),
        "latency_p50_s": round(percentile(latencies, 50), 3) if latencies else None,
        "latency_p90_s": round(percentile(latencies, 90), 3) if latencies else None,
        "latency_p99_s": round(percentile(latencies, 99), 3) if latencies else None,
        "ingest_request_p50_ms": round(percentile([s for _, s in submitted], 50) * 1000, 1),
        "cpu_ms_per_case": round(sum(per_case.values()), 2),
        "cpu_ms_per_case_by_process": per_case,
        "bare_per_s": round(bare_per_s, 1),
        "bare_loops": {
            name: {key: round(value, 1) for key, value in run.items()} for name, run in bare.items()
        },
        "ratio": round(end_to_end / bare_per_s, 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"Loopgate throughput — {args.cases} cases, {result['stack']} broker, model "
        f"{result['model_version']} ({result['runtime']}), batch {args.batch}, "
        f"{args.concurrency} concurrent clients, device {device}"
    )
    print(
        f"  ingest (POST, 201)             {result['ingest_per_s']:8.1f} cases/s  "
        f"(p50 {result['ingest_request_p50_ms']:.0f} ms per request)"
    )
    print(
        f"  end to end (submit -> decided) {end_to_end:8.1f} cases/s  "
        f"({len(done)}/{args.cases} routed {total_seconds:.1f} s after the first request)"
    )
    if latencies:
        print(
            f"  decision latency               p50 {percentile(latencies, 50):.2f} s   "
            f"p90 {percentile(latencies, 90):.2f} s   p99 {percentile(latencies, 99):.2f} s"
        )
    print(f"  CPU per case                   {result['cpu_ms_per_case']:8.2f} ms  {per_case}")
    for name, run in bare.items():
        print(
            f"  bare PyTorch loop ({name}, {run['threads']} threads), batch {args.batch}: "
            f"{run['with_decode']:8.1f} img/s with PNG decode, {run['no_decode']:8.1f} without"
        )
    print(f"  ratio end-to-end / bare loop (batch {args.batch} with decode): {result['ratio']:.2f}")


if __name__ == "__main__":
    main()
