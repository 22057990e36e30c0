"""What the near-copy lookup at ingest costs as a workflow grows (PostgreSQL, D143).

    .venv/bin/python bench/duplicate_lookup.py [--sizes 1000,20000,100000] [--lookups 600]
        [--statistics analyzed|grown]

Uses ``DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/loopgate_dupbench):
creates the database if it is missing and migrates it. For each size, one workflow
holds that many cases (bulk inserts, then ANALYZE), and ``case_duplicate_root`` runs
for new hashes. With ``--statistics grown`` the table is analyzed before the workflow
fills instead (each workflow is new, in a fresh database): a workflow that grew since
the last ANALYZE, as a new one on a busy table does, which the statistics take for
empty (D150). Two kinds of workflow:

* ``random``: every case's hash drawn at random, the spread the bands are cut for;
* ``crowded``: hashes within a few bits of 50 centres, like a line that photographs
  the same part, so that a band holds far more than ``BAND_MATES_AT_ONCE`` cases and
  the bounded statement runs.

Each lookup's CPU is read in this process and in its PostgreSQL backend
(``/proc/<pid>/stat``, so run it on the database's host); the figures are per lookup,
with the number of band-mates PostgreSQL read.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loopgate_dupbench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The parts a crowded line photographs: its cases and its new images lie near these.
CENTRES = [random.Random(centre).getrandbits(64) for centre in range(50)]


def backend_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def near(generator: random.Random, centre: int, bits: int) -> int:
    for bit in generator.sample(range(64), bits):
        centre ^= 1 << bit
    return centre


def workflow_fill(
    slug: str, size: int, kind: str, generator: random.Random, statistics: str = "analyzed"
) -> object:
    from django.db import connection
    from django.utils import timezone

    from workflows.models import Case, Workflow

    workflow, _ = Workflow.objects.get_or_create(
        slug=slug, defaults={"name": slug, "labels": ["ok", "defect"], "level": "human_only"}
    )
    have = Case.objects.filter(workflow=workflow).count()
    missing = size - have
    if statistics == "grown":
        if have:
            sys.exit(f"--statistics grown needs a new workflow; {slug} has cases")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE workflows_case")
    started = time.perf_counter()
    while missing > 0:
        batch = min(5000, missing)
        Case.objects.bulk_create(
            Case(
                id=uuid.uuid4(),
                workflow=workflow,
                image=f"cases/{slug}/bench.png",
                image_format="PNG",
                image_width=8,
                image_height=8,
                image_bytes=1,
                image_sha256="0" * 64,
                phash=f"{hash_for(kind, generator):016x}",
                created_at=timezone.now(),
            )
            for _ in range(batch)
        )
        missing -= batch
    if size > have:
        print(f"  filled {slug}: {size - have} cases in {time.perf_counter() - started:.1f} s")
    if statistics == "analyzed":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE workflows_case")
    return workflow


def hash_for(kind: str, generator: random.Random) -> int:
    if kind == "random":
        return generator.getrandbits(64)
    return near(generator, generator.choice(CENTRES), generator.randint(0, 6))


def measure(workflow: object, kind: str, lookups: int, generator: random.Random) -> None:
    from django.db import connection

    from workflows import services

    counted: list[int] = []
    original = services.BAND_MATES_AT_ONCE
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    probes = [f"{hash_for(kind, generator):016x}" for _ in range(lookups)]
    for probe in probes[:50]:  # warm: the backend's caches, the statements' plans
        services.case_duplicate_root(workflow=workflow, phash=probe)
    before_backend, before = backend_seconds(pid), time.process_time()
    for probe in probes:
        services.case_duplicate_root(workflow=workflow, phash=probe)
    backend = backend_seconds(pid) - before_backend
    own = time.process_time() - before
    # How many band-mates each lookup met (the first statement, without its bound).
    services.BAND_MATES_AT_ONCE = 10**9
    try:
        for probe in probes[:100]:
            sql = services._DUPLICATE_SQL["postgresql"][0]
            parameters = services.duplicate_lookup_parameters(
                workflow_id=workflow.pk,  # type: ignore[attr-defined]
                phash=probe,
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters)
                counted += [int(row[3]) for row in cursor.fetchall() if row[0] is None]
    finally:
        services.BAND_MATES_AT_ONCE = original
    mates = sorted(counted)
    print(
        f"  {kind:8} PostgreSQL {backend * 1000 / lookups:6.3f} ms, this process "
        f"{own * 1000 / lookups:6.3f} ms per lookup; band-mates median {mates[len(mates) // 2]}, "
        f"max {mates[-1]} (over {original}: the bounded statement)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,20000,100000")
    parser.add_argument("--lookups", type=int, default=600)
    parser.add_argument("--statistics", choices=["analyzed", "grown"], default="analyzed")
    options = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL")
    from review_next import database_ensure, django_start

    database_ensure(url)
    django_start(url)
    generator = random.Random(143)
    for size in (int(text) for text in options.sizes.split(",")):
        print(f"{size} cases in the workflow")
        for kind in ("random", "crowded"):
            workflow = workflow_fill(
                f"dup-{kind}-{size}", size, kind, generator, options.statistics
            )
            measure(workflow, kind, options.lookups, generator)


if __name__ == "__main__":
    main()
