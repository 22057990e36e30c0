"""Push a burst of cases through a running platform and check that every one is routed.

Meant for the README demo (``bash scripts/demo.sh``) or any deployment: it submits
``--cases`` demo images from ``--concurrency`` threads, then polls until every
accepted case is ``decided`` or ``in_review``, and reads ``/readyz`` before and after.
Exits non-zero when a case is lost, a server error was returned, or ``/readyz`` says
ready while cases are stuck.

    python bench/burst.py --base-url http://127.0.0.1:8000 --token KEY \
        --workflow surface-inspection --cases 300

Without ``--token`` it runs ``manage.py bootstrap_demo --json`` (safe to re-run) and
takes the workflow and the upstream token from it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TERMINAL = {"decided", "in_review", "failed"}


def demo_credentials() -> dict[str, str]:
    """The demo's workflow and upstream token, from ``bootstrap_demo --json`` run the way
    ``scripts/demo.sh`` runs it (local development settings, the demo's secret key)."""
    env = {"DJANGO_DEBUG": "1", **os.environ}
    secret = ROOT / "var" / "secret_key"
    if "DJANGO_SECRET_KEY" not in env and secret.exists():
        env["DJANGO_SECRET_KEY"] = secret.read_text().strip()
    out = subprocess.run(
        [sys.executable, "manage.py", "bootstrap_demo", "--json", "--cases", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def demo_images(n: int, seed: int) -> list[bytes]:
    from inference.synthetic import generate_dataset

    out = []
    for image, _ in generate_dataset(n, seed=seed):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--token")
    parser.add_argument("--workflow")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    token, workflow = args.token, args.workflow
    if not token:
        creds = demo_credentials()
        token, workflow = creds["api_token"], workflow or creds["workflow"]
    workflow = workflow or "surface-inspection"
    base = args.base_url.rstrip("/")
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    run_id = uuid.uuid4().hex[:8]

    ready_before = requests.get(f"{base}/readyz", timeout=10)
    print(f"/readyz before: {ready_before.status_code} {ready_before.text.strip()[:200]}")

    images = demo_images(args.cases, args.seed)
    statuses: dict[int, int] = {}
    ids: list[str] = []

    def submit(index: int) -> tuple[int, str | None]:
        for _attempt in range(20):
            try:
                response = session.post(
                    f"{base}/api/v1/workflows/{workflow}/cases/",
                    files={"image": (f"{index}.png", images[index], "image/png")},
                    data={"external_id": f"burst-{run_id}-{index}"},
                    timeout=60,
                )
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if response.status_code == 429:
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code >= 500:
                # Retry with the same external_id: the platform returns the case it kept.
                statuses[500] = statuses.get(500, 0) + 1
                time.sleep(0.5)
                continue
            return response.status_code, response.json().get("id")
        return 0, None

    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        for status, case_id in pool.map(submit, range(args.cases)):
            statuses[status] = statuses.get(status, 0) + 1
            if case_id:
                ids.append(case_id)
    ingest_seconds = time.perf_counter() - started
    print(
        f"submitted {args.cases} in {ingest_seconds:.1f} s "
        f"({args.cases / ingest_seconds:.1f}/s); statuses {dict(sorted(statuses.items()))}"
    )

    pending = set(ids)
    final: dict[str, int] = {}
    deadline = time.monotonic() + args.timeout
    while pending and time.monotonic() < deadline:
        for case_id in list(pending):
            status = session.get(f"{base}/api/v1/cases/{case_id}/", timeout=30).json()["status"]
            if status in TERMINAL:
                pending.discard(case_id)
                final[status] = final.get(status, 0) + 1
        if pending:
            time.sleep(1)
    routed_seconds = time.perf_counter() - started
    print(f"routed {len(ids) - len(pending)}/{len(ids)} in {routed_seconds:.1f} s: {final}")

    ready_after = requests.get(f"{base}/readyz", timeout=10)
    print(f"/readyz after: {ready_after.status_code} {ready_after.text.strip()[:200]}")

    problems = []
    if pending:
        problems.append(f"{len(pending)} cases never routed")
    if len(ids) != args.cases:
        problems.append(f"{args.cases - len(ids)} submissions never accepted")
    if pending and ready_after.status_code == 200:
        problems.append("/readyz says ready while cases are stuck")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
