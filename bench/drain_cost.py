"""What the worker spends per case on a backlog: CPU (its own and PostgreSQL's), SQL
statements and messages, with nothing else in the process.

Creates N waiting cases of the demo workflow at ``full`` (their wake-up messages go to a
throw-away filesystem broker no worker reads), then runs the worker's tasks in this
process, as a worker would, over the backlog and counts:

* with the drain (``processing.tasks.workflow_drain``): the one message ingest
  published, and the successors a drain wakes after ``LOOPGATE_DRAIN_MAX_SECONDS``;
* with the earlier protocol (``processing.tasks.case_process``, one message per case,
  each batching up to ``LOOPGATE_INFERENCE_BATCH_SIZE`` waiting cases): every case's
  message, in order, most of them finding their case already routed.

The script runs the protocol of whichever code is on ``PYTHONPATH``, so the same file
measures a tree before and after the change. It flushes the database it is given:

    PYTHONPATH=$PWD DATABASE_URL=postgres://postgres@127.0.0.1:5432/loopgate_x \\
      .venv/bin/python bench/drain_cost.py --cases 320 [--protocol drain|per-case] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=320)
    parser.add_argument("--protocol", choices=("drain", "per-case"), default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="loopgate-drain-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret")
    os.environ["LOOPGATE_VAR_DIR"] = str(tmp)
    os.environ["CELERY_BROKER_URL"] = "filesystem://"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
    os.environ.setdefault("LOOPGATE_WARM_MODELS", "0")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from inference.synthetic import generate_dataset
    from processing import services, tasks
    from workflows.models import Case, CaseStatus, Workflow

    call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("bootstrap_demo", "--level", "full", stdout=quiet)
    from loopgate.management.commands.bootstrap_demo import DEMO_SLUG

    workflow = Workflow.objects.get(slug=DEMO_SLUG)
    protocol = args.protocol or ("drain" if hasattr(tasks, "workflow_drain") else "per-case")

    import io

    images = []
    for image, _ in generate_dataset(args.cases, seed=16):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append(buffer.getvalue())
    ids = [
        str(
            services.case_create(
                workflow=workflow,
                image_data=data,
                external_id=None,
                metadata={},
                submitted_by=None,
            ).case.id
        )
        for data in images
    ]
    # Warm: the model loaded and the connection open, off the clock.
    from modelops.runtime import models_warm

    models_warm()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    statements = 0

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    own_before = resource.getrusage(resource.RUSAGE_SELF)
    pg_before = cpu_of(backend)
    started = time.perf_counter()
    messages = 0
    with connection.execute_wrapper(count):
        if protocol == "drain":
            # The message ingest published, then each successor a drain past
            # LOOPGATE_DRAIN_MAX_SECONDS woke.
            while Case.objects.filter(id__in=ids, status=CaseStatus.RECEIVED).exists():
                tasks.workflow_drain(workflow.id)
                messages += 1
        else:
            for case_id in ids:
                tasks.case_process(case_id)
                messages += 1
    wall = time.perf_counter() - started
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    pg_after = cpu_of(backend)
    routed = Case.objects.filter(id__in=ids).exclude(status=CaseStatus.RECEIVED).count()
    own = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    result = {
        "protocol": protocol,
        "cases": args.cases,
        "routed": routed,
        "batch": int(os.environ.get("LOOPGATE_INFERENCE_BATCH_SIZE", "16")),
        "messages_per_case": round(messages / args.cases, 3),
        "statements_per_case": round(statements / args.cases, 2),
        "worker_cpu_ms_per_case": round(own * 1000 / args.cases, 2),
        "postgres_cpu_ms_per_case": round((pg_after - pg_before) * 1000 / args.cases, 2),
        "wall_s": round(wall, 2),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
