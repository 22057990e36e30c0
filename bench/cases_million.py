"""The case list and the export at 1,000,000 cases (PostgreSQL).

    .venv/bin/python bench/cases_million.py [--cases 1000000] [--runs 30]

Uses ``DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/loopgate_cases_bench):
creates the database if it is missing, migrates it, and fills one workflow with
``--cases`` generated cases by COPY (with predictions, review tasks and verdicts as the
pipeline would have left them; every case points at one placeholder image). A second run
finds the cases there and only measures. Then:

* the case list API (the whole request: session, access, filters, keyset page, JSON) for
  several filters, ``--runs`` times each: p50 and p95, and each query's plan's top line;
* the export (JSON Lines and CSV) of every labelled case, each in a fresh process: rows
  per second, and the process's resident memory before and its most during, for
  the whole export and for a tenth of it (constant memory means the same growth).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loopgate_cases_bench"
SLUG = "bench-cases"
LABELS = ["ok", "scratch", "crack", "stain", "dent", "burn", "chip", "warp", "smear", "void"]
# A skewed label distribution: "void" is the rare class (about 1%).
LABEL_WEIGHTS = [40, 15, 10, 8, 7, 6, 5, 4, 4, 1]
T0 = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=365)
FILL_CHUNK = 50_000


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


def django_start(url: str, *, migrate: bool = True) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


# --- Filling ---------------------------------------------------------------------------


def _copy(table: str, columns: list[str], rows: Any) -> int:
    from django.db import connection

    count = 0
    with connection.cursor() as cursor:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


def fill(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from modelops.models import ModelVersion
    from review.models import ReviewTask, Verdict
    from workflows.models import Case, Prediction, Workflow, WorkflowMembership

    users = get_user_model().objects
    workflow, _ = Workflow.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench cases", "labels": LABELS, "level": "partial"}
    )
    have = Case.objects.filter(workflow=workflow).count()
    if have >= count:
        print(f"{have} cases already in {SLUG}: measuring only")
        return
    if have:
        raise SystemExit(f"{SLUG} holds {have} cases, fewer than {count}: drop the database")
    admin = users.filter(username="bench-admin").first() or users.create_user(
        username="bench-admin", password="bench-only"
    )
    reviewers = [
        users.filter(username=f"bench-rev-{i}").first()
        or users.create_user(username=f"bench-rev-{i}", password="bench-only")
        for i in range(8)
    ]
    WorkflowMembership.objects.get_or_create(
        workflow=workflow, user=admin, defaults={"can_review": True, "can_admin": True}
    )
    versions = [
        ModelVersion.objects.get_or_create(
            name="bench-model",
            version=number,
            defaults={
                "architecture": "stub",
                "labels": LABELS,
                "weights": "models/stub.pt",
                "sha256": "0" * 64,
            },
        )[0]
        for number in (1, 2)
    ]
    rng = random.Random(20261130)
    started = time.perf_counter()

    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('workflows_prediction', 'id'))")
        prediction_id = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(pg_get_serial_sequence('review_reviewtask', 'id'))")
        task_id = cursor.fetchone()[0]
    step = SPAN / count

    def generate(start: int, stop: int) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        nonlocal prediction_id, task_id
        case_rows: list[tuple[Any, ...]] = []
        prediction_rows: list[tuple[Any, ...]] = []
        task_rows: list[tuple[Any, ...]] = []
        verdict_rows: list[tuple[Any, ...]] = []
        for index in range(start, stop):
            case_id = uuid.uuid4()
            created = T0 + step * index + dt.timedelta(microseconds=rng.randrange(1000))
            truth = rng.choices(LABELS, LABEL_WEIGHTS)[0]
            draw = rng.random()
            status, level, reason = "decided", "partial", ""
            source, decision_label, confidence, decided_version = "", "", None, None
            human_label, decided_at, labelled_at, deciding = "", None, None, None
            model_label = truth if rng.random() < 0.9 else rng.choice(LABELS)
            version = versions[1] if index > count // 5 else versions[0]
            scored = True
            if draw < 0.60:  # decided by the model
                level = "partial" if rng.random() < 0.6 else "full"
                source, decision_label = "model", model_label
                confidence = 0.9 + rng.random() * 0.1
                decided_version, decided_at = version.pk, created + dt.timedelta(seconds=2)
                if rng.random() < 0.05:
                    reason = "audit"
                    if rng.random() < 0.8:
                        human_label, labelled_at = truth, created + dt.timedelta(hours=3)
            elif draw < 0.85:  # decided by people
                level = rng.choice(["shadow", "assistance", "partial"])
                reason = {"partial": "low_confidence"}.get(level, level)
                source, decision_label, human_label = "human", truth, truth
                decided_at = labelled_at = created + dt.timedelta(minutes=30)
            elif draw < 0.97:  # in review
                level, reason, status, scored = "human_only", "human_only", "in_review", False
            elif draw < 0.99:
                status, level, scored = "received", "", False
            else:
                status, level, scored = "failed", "", False
            if scored:
                deciding = prediction_id
                prediction_rows.append(
                    (
                        prediction_id,
                        case_id,
                        version.pk,
                        "serving",
                        json.dumps({model_label: 0.9, "ok": 0.05}),
                        model_label,
                        confidence or 0.6,
                        12.5,
                        created,
                    )
                )
                prediction_id += 1
            if human_label or status == "in_review":
                kind = "audit" if reason == "audit" else "review"
                task_rows.append(
                    (
                        task_id,
                        case_id,
                        workflow.pk,
                        kind,
                        reason or "human_only",
                        False,
                        "done" if human_label else "open",
                        1,
                        1,
                        False,
                        created,
                        labelled_at,
                    )
                )
                if human_label:
                    verdict_rows.append(
                        (
                            task_id,
                            case_id,
                            rng.choice(reviewers).pk,
                            human_label,
                            "",
                            labelled_at,
                        )
                    )
                task_id += 1
            case_rows.append(
                (
                    case_id,
                    workflow.pk,
                    f"ext-{index}",
                    json.dumps({"line": index % 8, "shift": "abc"[index % 3]}),
                    "cases/bench/placeholder.png",
                    "PNG",
                    64,
                    64,
                    2048,
                    "0" * 64,
                    status,
                    created,
                    created,
                    0,
                    "",
                    False,
                    "{}",
                    level,
                    None,
                    reason,
                    level in ("assistance", "partial"),
                    deciding,
                    "",
                    decision_label,
                    source,
                    confidence,
                    decided_version,
                    decided_at,
                    human_label,
                    labelled_at,
                    False,
                    "",
                )
            )
        return case_rows, prediction_rows, task_rows, verdict_rows

    def columns(model: Any, names: list[str]) -> list[str]:
        return [model._meta.get_field(name).column for name in names]

    case_columns = columns(
        Case,
        [
            "id",
            "workflow",
            "external_id",
            "metadata",
            "image",
            "image_format",
            "image_width",
            "image_height",
            "image_bytes",
            "image_sha256",
            "status",
            "created_at",
            "updated_at",
            "processing_attempts",
            "claimed_by",
            "publish_pending",
            "planned_versions",
            "routed_level",
            "routed_threshold",
            "review_reason",
            "suggestion_visible",
            "deciding_prediction",
            "failure_reason",
            "decision_label",
            "decision_source",
            "decision_confidence",
            "decision_model_version",
            "decided_at",
            "human_label",
            "labelled_at",
            "is_gold",
            "gold_label",
        ],
    )
    prediction_columns = columns(
        Prediction,
        [
            "id",
            "case",
            "model_version",
            "role",
            "scores",
            "label",
            "confidence",
            "latency_ms",
            "created_at",
        ],
    )
    task_columns = columns(
        ReviewTask,
        [
            "id",
            "case",
            "workflow",
            "kind",
            "reason",
            "show_suggestion",
            "status",
            "verdicts_required",
            "agreement_required",
            "needs_adjudication",
            "created_at",
            "closed_at",
        ],
    )
    verdict_columns = columns(
        Verdict, ["task", "case", "reviewer", "label", "comment", "created_at"]
    )
    totals = [0, 0, 0, 0]
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Cases and predictions point at each other; the keys are checked at commit.
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for start in range(0, count, FILL_CHUNK):
            cases, predictions, tasks, verdicts = generate(start, min(count, start + FILL_CHUNK))
            totals[0] += _copy(Case._meta.db_table, case_columns, cases)
            totals[1] += _copy(Prediction._meta.db_table, prediction_columns, predictions)
            totals[2] += _copy(ReviewTask._meta.db_table, task_columns, tasks)
            totals[3] += _copy(Verdict._meta.db_table, verdict_columns, verdicts)
            print(f"  {totals[0]} cases after {time.perf_counter() - started:.0f} s", flush=True)
        with connection.cursor() as cursor:
            for table, last in (
                ("workflows_prediction", prediction_id),
                ("review_reviewtask", task_id),
            ):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [last]
                )
    print(
        f"COPY {totals[0]} cases, {totals[1]} predictions, {totals[2]} review tasks, "
        f"{totals[3]} verdicts in {time.perf_counter() - started:.0f} s (generated and copied)"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")


# --- Measuring -------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure_list(runs: int) -> list[tuple[str, float, float, int]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from modelops.models import ModelVersion
    from workflows.inputs import case_filters_parse
    from workflows.models import Workflow
    from workflows.selectors import cases_page

    workflow = Workflow.objects.get(slug=SLUG)
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    v1 = ModelVersion.objects.get(name="bench-model", version=1)
    url = f"/api/v1/workflows/{SLUG}/cases/"
    scenarios: list[tuple[str, dict[str, str]]] = [
        ("no filter", {}),
        ("status=in_review", {"status": "in_review"}),
        ("status=failed (1%)", {"status": "failed"}),
        ("label=ok (common)", {"label": "ok"}),
        ("label=void (rare)", {"label": "void"}),
        ("source=human", {"source": "human"}),
        ("model_version=v1 (old)", {"model_version": v1.tag}),
        ("routed_level=full", {"routed_level": "full"}),
        ("review_reason=low_confidence", {"review_reason": "low_confidence"}),
        ("audit=true (3%)", {"audit": "true"}),
        ("disagree=true", {"disagree": "true"}),
        ("external_id (exact)", {"external_id": "ext-654321"}),
        ("one week", {"created_after": "2026-03-01", "created_before": "2026-03-08"}),
        ("ordering=-decided_at", {"ordering": "-decided_at"}),
        (
            "label=void, source=human, one month",
            {
                "label": "void",
                "source": "human",
                "created_after": "2026-05-01",
                "created_before": "2026-06-01",
            },
        ),
    ]
    # The first request of a process loads what the app loads once (the model runtime).
    assert client.get(url, {"limit": 1}).status_code == 200
    results = []
    for name, params in scenarios:
        timings = []
        rows = 0
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
            rows = len(response.json()["results"])
        filters = case_filters_parse(params, workflow=workflow)
        with CaptureQueriesContext(connection) as captured:
            cases_page(workflow=workflow, filters=filters, limit=50)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + captured.captured_queries[-1]["sql"])
            plan = [line[0] for line in cursor.fetchall()]
        scan = next((line.strip() for line in plan if "Index" in line or "Seq Scan" in line), "")
        results.append((name, statistics.median(timings), _percentile(timings, 0.95), rows))
        print(
            f"  {name:40s} p50 {results[-1][1]:7.1f} ms  p95 {results[-1][2]:7.1f} ms  "
            f"rows {rows:3d}  {scan[:90]}"
        )
    # Deep pages: follow "next" 50 times from the start.
    timings = []
    response = client.get(url, {"limit": 50}).json()
    for _ in range(50):
        started = time.perf_counter()
        response = client.get(response["next"]).json()
        timings.append((time.perf_counter() - started) * 1000)
    results.append(
        ("pages 2-51 (cursor)", statistics.median(timings), _percentile(timings, 0.95), 50)
    )
    print(
        f"  {'pages 2-51 (cursor)':40s} p50 {results[-1][1]:7.1f} ms  p95 {results[-1][2]:7.1f} ms"
    )
    # The case list page (HTML).
    page_timings = []
    for _ in range(runs):
        started = time.perf_counter()
        assert client.get(f"/workflows/{SLUG}/cases/", {"label": "void"}).status_code == 200
        page_timings.append((time.perf_counter() - started) * 1000)
    results.append(
        (
            "page /cases/?label=void (HTML)",
            statistics.median(page_timings),
            _percentile(page_timings, 0.95),
            50,
        )
    )
    print(
        f"  {'page /cases/?label=void (HTML)':40s} p50 {results[-1][1]:7.1f} ms  "
        f"p95 {results[-1][2]:7.1f} ms"
    )
    return results


def _rss_mb() -> float:
    """The process's resident memory now (not its high-water mark: importing the app's
    model runtime peaks higher than an export would, and would hide it)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def export_once(fmt: str, params: dict[str, str]) -> dict[str, Any]:
    """One export through the API in this process; its rows, time and peak memory."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    client.get(f"/api/v1/workflows/{SLUG}/cases/", {"limit": 1})  # warm up imports
    gc.collect()
    before = _rss_mb()
    high = before
    started = time.perf_counter()
    response = client.get(f"/api/v1/workflows/{SLUG}/export/", {"format": fmt, **params})
    assert response.status_code == 200
    lines = size = 0
    for number, chunk in enumerate(response.streaming_content):
        lines += chunk.count(b"\n")
        size += len(chunk)
        if number % 5 == 0:
            high = max(high, _rss_mb())
    elapsed = time.perf_counter() - started
    high = max(high, _rss_mb())
    rows = lines - (1 if fmt == "csv" else 0)
    return {
        "format": fmt,
        "rows": rows,
        "seconds": elapsed,
        "rows_per_second": rows / elapsed,
        "megabytes": size / 1e6,
        "rss_before_mb": before,
        "rss_peak_mb": high,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--export-only", choices=["jsonl", "csv"])
    parser.add_argument("--list-only", action="store_true", help="skip the exports")
    parser.add_argument("--export-params", default="{}")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if args.export_only:
        django_start(url, migrate=False)
        print(json.dumps(export_once(args.export_only, json.loads(args.export_params))))
        return
    database_ensure(url)
    django_start(url)
    fill(args.cases)
    print(f"\ncase list API, {args.runs} runs each (admin session, 50 per page):")
    measure_list(args.runs)
    if args.list_only:
        return
    print("\nexport, each in a fresh process (RSS sampled every 5 chunks):")
    for fmt in ("jsonl", "csv"):
        for label, params in (("a tenth", {"created_before": "2026-01-06"}), ("all", {})):
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--export-only",
                        fmt,
                        "--export-params",
                        json.dumps(params),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "BENCH_DATABASE_URL": url},
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            result = json.loads(out)
            print(
                f"  {fmt:5s} {label:7s} {result['rows']:8d} rows in {result['seconds']:6.1f} s = "
                f"{result['rows_per_second']:7.0f} rows/s, {result['megabytes']:7.1f} MB; "
                f"RSS {result['rss_before_mb']:.0f} MB before, "
                f"at most {result['rss_peak_mb']:.0f} MB during "
                f"(+{result['rss_peak_mb'] - result['rss_before_mb']:.0f} MB)"
            )


if __name__ == "__main__":
    main()
