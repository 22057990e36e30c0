"""How fast is ``review_next`` with 100,000 cases waiting? (PostgreSQL)

    .venv/bin/python bench/review_next.py [--tasks 100000] [--claims 200] [--reviewers 20]
    .venv/bin/python bench/review_next.py --api [--tasks 3000] [--claims 300]

Uses ``DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/loopgate_bench):
creates the database if it is missing, migrates it, and fills one workflow's queue with
waiting review tasks (bulk inserts; run it again and the queue is topped up, not
rebuilt). Then ``--reviewers`` reviewers each hold a lease, as on a busy line, and take
turns: give a verdict on the case they hold, claim the next. Both are timed in the
process (server-side: no HTTP), and the plan of the claim query is printed.

With ``--api`` the same turns go through the whole web stack in this process, each
reviewer with an API token: Django's WSGI handler (what gunicorn calls) with the
middleware, DRF's authentication, rate and parsing, the view and its serializer, the
access cache on Redis (``LOOPGATE_CACHE_URL``, default redis://127.0.0.1:6379/10) as in
production. Only the handler's call is timed; gunicorn's own share of a request (the
HTTP parsing; ``/healthz`` costs about 0.5 ms of CPU through it) is not in the figure.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loopgate_bench"
SLUG = "bench-queue"
LABELS = ["ok", "scratch", "crack", "stain"]
BATCH = 5000


def database_ensure(url: str) -> None:
    import psycopg
    from psycopg import sql

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    maintenance = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def django_start(url: str, *, api: bool = False) -> None:
    os.environ["DATABASE_URL"] = url
    if api:
        # Production settings, as a web process runs them (DEBUG would keep every SQL
        # statement's text), with the access cache on Redis.
        os.environ["DJANGO_DEBUG"] = "0"
        os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
        os.environ.setdefault("LOOPGATE_CACHE_URL", "redis://127.0.0.1:6379/10")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def queue_fill(*, tasks: int) -> tuple[object, list[object]]:
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image

    from review.models import ReviewTask
    from workflows.models import Case, CaseStatus, Workflow, WorkflowMembership

    workflow, _ = Workflow.objects.get_or_create(
        slug=SLUG,
        defaults={"name": "Bench queue", "labels": LABELS, "level": "human_only"},
    )
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buffer, format="PNG")
    data = buffer.getvalue()
    image_name = f"cases/{SLUG}/bench.png"
    if not default_storage.exists(image_name):
        image_name = default_storage.save(image_name, ContentFile(data))
    digest = hashlib.sha256(data).hexdigest()

    waiting = ReviewTask.objects.filter(workflow=workflow, status="open").count()
    missing = max(0, tasks - waiting)
    started = time.perf_counter()
    while missing:
        size = min(BATCH, missing)
        cases = Case.objects.bulk_create(
            Case(
                id=uuid.uuid4(),
                workflow=workflow,
                image=image_name,
                image_format="PNG",
                image_width=8,
                image_height=8,
                image_bytes=len(data),
                image_sha256=digest,
                status=CaseStatus.IN_REVIEW,
                routed_level="human_only",
                review_reason="human_only",
            )
            for _ in range(size)
        )
        ReviewTask.objects.bulk_create(
            ReviewTask(case=case, workflow=workflow, kind="review", reason="human_only")
            for case in cases
        )
        missing -= size
    if tasks > waiting:
        print(f"queued {tasks - waiting} tasks in {time.perf_counter() - started:.1f} s")

    users = get_user_model().objects
    reviewers = []
    for index in range(20):
        user, _ = users.get_or_create(username=f"bench-reviewer-{index:02d}")
        WorkflowMembership.objects.get_or_create(
            workflow=workflow, user=user, defaults={"can_review": True}
        )
        reviewers.append(user)
    return workflow, reviewers


def claim_plan(workflow: object, reviewer: object) -> str:
    from django.db import connection, transaction
    from django.utils import timezone

    from review.claiming import claim_sql

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "ANALYZE review_reviewtask, review_assignment, review_verdict, workflows_case"
            )
            # The statement review.services picks the next task with: a pending deadline
            # first (the partial index of cases with one), then the oldest.
            sql, params = claim_sql(workflow=workflow, reviewer=reviewer, now=timezone.now())
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


class Timings:
    """Wall time, this process's CPU time and SQL statements, per timed call."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.statements: list[int] = []

    @contextmanager
    def timed(self) -> Iterator[None]:
        from django.db import connection

        sent = 0

        def count(execute, sql, params, many, context):
            nonlocal sent
            sent += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            wall, cpu = time.perf_counter(), time.process_time()
            yield
            self.wall.append(time.perf_counter() - wall)
            self.cpu.append(time.process_time() - cpu)
        self.statements.append(sent)

    def summary(self, name: str) -> str:
        wall = sorted(s * 1000 for s in self.wall)
        p95 = wall[min(len(wall) - 1, round(0.95 * (len(wall) - 1)))]
        return (
            f"{name:<15} n={len(wall):<4} wall median {statistics.median(wall):6.2f} ms, "
            f"p95 {p95:6.2f} ms, max {wall[-1]:6.2f} ms; "
            f"cpu median {statistics.median(self.cpu) * 1000:5.2f} ms; "
            f"sql {statistics.median(self.statements):.0f} statements"
        )


def leases_release(workflow: object) -> None:
    """End the bench reviewers' live leases, so that a later run starts with none."""
    from django.utils import timezone

    from review.models import Assignment, AssignmentState
    from review.services import assignments_end

    assignments_end(
        leases=Assignment.objects.filter(task__workflow=workflow, state=AssignmentState.ACTIVE),
        to_state=AssignmentState.RELEASED,
        now=timezone.now(),
    )


def report(heading: str, claims: Timings, verdicts: Timings) -> None:
    print(f"\n{heading}:")
    print(claims.summary("review_next"))
    print(verdicts.summary("verdict_submit"))


def api_turns(workflow: object, reviewers: list, *, claims: int) -> None:
    """The turns of ``main`` as API requests: ``POST …/review/next/`` and ``POST
    /api/v1/review-tasks/{id}/verdict/``, each reviewer with an API token."""
    import json

    from django.core.cache import caches
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    from accounts.services import api_token_create

    handler = WSGIHandler()
    factory = RequestFactory()
    keys = {
        reviewer.pk: api_token_create(user=reviewer, name=f"bench {uuid.uuid4().hex[:8]}")[1]
        for reviewer in reviewers
    }

    def call(reviewer: object, path: str, body: dict, timings: Timings | None) -> dict:
        environ = factory.post(
            path,
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {keys[reviewer.pk]}",
        ).environ
        answer: list[str] = []

        def start_response(status: str, headers: list, exc_info: object = None) -> None:
            answer.append(status)

        if timings is None:
            response = handler(environ, start_response)
        else:
            with timings.timed():
                response = handler(environ, start_response)
        content = b"".join(response)
        response.close()
        if not answer[0].startswith(("200", "201")):
            raise SystemExit(f"{path}: {answer[0]} {content[:300]!r}")
        return json.loads(content)

    next_path = f"/api/v1/workflows/{SLUG}/review/next/"
    leases_release(workflow)
    backend = type(caches["default"])
    print(f"access cache: {backend.__module__}.{backend.__name__}")
    held = {reviewer.pk: call(reviewer, next_path, {}, None)["id"] for reviewer in reviewers}

    def turns(count: int, verdicts: Timings | None, nexts: Timings | None) -> None:
        for turn in range(count):
            reviewer = reviewers[turn % len(reviewers)]
            path = f"/api/v1/review-tasks/{held[reviewer.pk]}/verdict/"
            call(reviewer, path, {"label": LABELS[turn % len(LABELS)]}, verdicts)
            held[reviewer.pk] = call(reviewer, next_path, {}, nexts)["id"]

    # Warm: every path has run once (prepared statements compiled, connections open).
    turns(2 * len(reviewers), None, None)
    nexts, verdicts = Timings(), Timings()
    turns(claims, verdicts, nexts)
    leases_release(workflow)
    report(f"through the web stack, {len(reviewers)} reviewers taking turns", nexts, verdicts)
    print(
        f"cpu mean: next {statistics.mean(nexts.cpu) * 1000:.2f} ms, "
        f"verdict {statistics.mean(verdicts.cpu) * 1000:.2f} ms "
        "(the handler's call: middleware, DRF, the view; not gunicorn's HTTP parsing)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--reviewers", type=int, default=20, choices=range(1, 21))
    parser.add_argument(
        "--api", action="store_true", help="through the web stack (WSGI handler, DRF), in process"
    )
    options = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL")
    database_ensure(url)
    django_start(url, api=options.api)

    from review.models import ReviewTask
    from review.services import review_next, verdict_submit

    workflow, reviewers = queue_fill(tasks=options.tasks)
    reviewers = reviewers[: options.reviewers]
    leases_release(workflow)
    waiting = ReviewTask.objects.filter(workflow=workflow, status="open").count()
    print(f"{waiting} review tasks waiting; {len(reviewers)} reviewers")

    if options.api:
        api_turns(workflow, reviewers, claims=options.claims)
        return
    print("\nclaim query plan:\n" + claim_plan(workflow, reviewers[0]))

    held = {}
    for reviewer in reviewers:
        held[reviewer.pk] = review_next(workflow=workflow, reviewer=reviewer)
    claims = Timings()
    verdicts = Timings()
    for turn in range(options.claims):
        reviewer = reviewers[turn % len(reviewers)]
        assignment = held[reviewer.pk]
        with verdicts.timed():
            verdict_submit(task_id=assignment.task_id, reviewer=reviewer, label=LABELS[turn % 4])
        with claims.timed():
            held[reviewer.pk] = review_next(workflow=workflow, reviewer=reviewer)
        assert held[reviewer.pk] is not None, "the queue ran dry"
    leases_release(workflow)
    report(
        f"with {waiting} cases waiting and {len(reviewers) - 1} other live leases",
        claims,
        verdicts,
    )
    print(
        "(wall: elapsed time of the call; cpu: this process's CPU time in it; sql: statements "
        "sent, including transaction and savepoint control)"
    )


if __name__ == "__main__":
    main()
