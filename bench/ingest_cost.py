"""What one ingest and one read of a case cost the web process and its PostgreSQL
backend, with values bound on the client (Django's default) and on the server with
repeated statements prepared (D151), in alternating rounds on the same database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loopgate_ingest \\
        .venv/bin/python bench/ingest_cost.py [--cases 1000] [--rounds 3]

Flushes and migrates the database, bootstraps the demo workflow at ``full`` (as
``bench/throughput.py`` does), then posts demo images through Django's WSGI handler in
this one process (middleware, DRF's authentication and rate, the multipart parse, the
view and the case service) and reads each case back once (``GET /api/v1/cases/{id}/``,
as an upstream system polling for its decision), with the access cache on Redis
(``LOOPGATE_CACHE_URL``, default redis://127.0.0.1:6379/10). No HTTP server and no
worker run: the first case raises the workflow's wake-up flag and the rest find it
raised, as under load. Every round posts images no earlier round posted. The CPU figures
are this process's and its backend's (``/proc``), so the machine's other work does not
enter them, only its speed; the rounds alternate so that a drift in that speed falls on
both modes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MODES = {
    "client": {"server_side_binding": False, "prepare_threshold": None},
    "server": {"server_side_binding": True, "prepare_threshold": 5},
}


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("LOOPGATE_CACHE_URL", "redis://127.0.0.1:6379/10")
    os.environ["LOOPGATE_THROTTLE_TOKEN_RATE"] = "1000000/min"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connection
    from django.test import RequestFactory
    from throughput import BOUNDARY, demo_images, multipart_body

    call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", "--noinput", verbosity=0)
    out = io.StringIO()
    call_command("bootstrap_demo", "--json", "--level", "full", stdout=out)
    creds = json.loads(out.getvalue().strip().splitlines()[-1])
    path = f"/api/v1/workflows/{creds['workflow']}/cases/"
    rounds = [mode for _ in range(args.rounds) for mode in MODES]
    images = demo_images(args.cases * len(rounds) + 8)
    handler = WSGIHandler()
    factory = RequestFactory()

    def call(environ: dict) -> tuple[int, bytes]:
        status: list[str] = []
        response = handler(environ, lambda s, h, e=None: status.append(s))
        content = b"".join(response)
        response.close()
        return int(status[0].split()[0]), content

    def post(body: bytes) -> tuple[int, bytes]:
        return call(
            factory.generic(
                "POST",
                path,
                body,
                content_type=f"multipart/form-data; boundary={BOUNDARY}",
                HTTP_AUTHORIZATION=f"Token {creds['api_token']}",
            ).environ
        )

    def get(case_id: str) -> tuple[int, bytes]:
        return call(
            factory.get(
                f"/api/v1/cases/{case_id}/", HTTP_AUTHORIZATION=f"Token {creds['api_token']}"
            ).environ
        )

    for index in range(8):  # warm: imports, the access cache, the wake-up flag
        assert post(multipart_body(images[index], f"warm-{index}"))[0] == 201
    figures: dict[str, list[dict]] = {mode: [] for mode in MODES}
    offset = 8
    for number, mode in enumerate(rounds):
        connection.close()
        connection.settings_dict["OPTIONS"].update(MODES[mode])
        bodies = [
            multipart_body(images[offset + i], f"r{number}-{mode}-{i}") for i in range(args.cases)
        ]
        offset += args.cases
        # A few posts open the connection and prepare the statements, off the clock.
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        own, backend, wall = time.process_time(), backend_cpu(pid), time.perf_counter()
        ids = []
        for body in bodies:
            status, content = post(body)
            if status != 201:
                sys.exit(f"a post answered {status}: {content[:300]!r}")
            ids.append(json.loads(content)["id"])
        posted = time.process_time(), backend_cpu(pid), time.perf_counter()
        for case_id in ids:  # what an upstream system polling its cases costs
            status, content = get(case_id)
            if status != 200:
                sys.exit(f"a read answered {status}: {content[:300]!r}")
        read = time.process_time(), backend_cpu(pid), time.perf_counter()
        assert connection.connection.info.backend_pid == pid, "the connection was replaced"
        row = {
            "post_web_ms": (posted[0] - own) * 1000 / args.cases,
            "post_postgres_ms": (posted[1] - backend) * 1000 / args.cases,
            "post_wall_ms": (posted[2] - wall) * 1000 / args.cases,
            "get_web_ms": (read[0] - posted[0]) * 1000 / args.cases,
            "get_postgres_ms": (read[1] - posted[1]) * 1000 / args.cases,
            "get_wall_ms": (read[2] - posted[2]) * 1000 / args.cases,
        }
        figures[mode].append(row)
        if not args.json:
            print(
                f"round {number + 1} {mode:6}: POST web {row['post_web_ms']:.2f} ms, "
                f"PostgreSQL {row['post_postgres_ms']:.2f} ms; GET web {row['get_web_ms']:.2f}"
                f" ms, PostgreSQL {row['get_postgres_ms']:.2f} ms (CPU per request)",
                flush=True,
            )
    summary = {
        mode: {key: round(statistics.median(r[key] for r in rows), 3) for key in rows[0]}
        for mode, rows in figures.items()
    }
    summary["ratio_server_over_client"] = {
        key: round(summary["server"][key] / summary["client"][key], 3) for key in summary["client"]
    }
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
