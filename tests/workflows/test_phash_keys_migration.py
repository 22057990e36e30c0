"""Migration 0016 (D150) on a database of its own, both ways, on each vendor: the keyed
indexes are built before the old band indexes go, and going back restores them. The
operations are ``kernel.migrationops``'s, CONCURRENTLY on PostgreSQL (outside a
transaction: a failure there would leave the migration half applied)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
KEYED = {"case_phash_key", *(f"case_phash_band_key_{index}" for index in range(5))}
OLD = {"case_phash_by_workflow", *(f"case_phash_band_{index}" for index in range(5))}
WORKFLOW_OWN = "workflows_case_workflow_id_f7508f53"


def migrate(url: str, *target: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(DATABASE_URL=url, LOOPGATE_REQUIRE_SERVICES="0")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", *target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def sqlite_indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as database:
        rows = database.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'workflows_case'"
        ).fetchall()
    return {row[0] for row in rows}


def test_the_migration_goes_both_ways_on_the_embedded_database(tmp_path: Path) -> None:
    path = tmp_path / "migrations.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    after = sqlite_indexes(path)
    assert after >= KEYED and not after & OLD, after
    assert not any(name.startswith("workflows_case_workflow_id") for name in after), after
    migrate(url, "workflows", "0015")
    before = sqlite_indexes(path)
    assert before >= OLD and not before & KEYED, before
    assert any(name.startswith("workflows_case_workflow_id") for name in before), before
    migrate(url, "workflows")
    assert sqlite_indexes(path) == after


def test_the_migration_goes_both_ways_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's CONCURRENTLY path")
    settings: dict[str, Any] = connection.settings_dict
    name = f"loopgate_migration_{uuid.uuid4().hex[:10]}"
    server = psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    url = (
        f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@"
        f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{name}"
    )

    def indexes() -> set[str]:
        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as database:
            rows = database.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'workflows_case'"
            ).fetchall()
        return {row[0] for row in rows}

    server.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(url)
        after = indexes()
        assert after >= KEYED and not after & OLD and WORKFLOW_OWN not in after, after
        migrate(url, "workflows", "0015")
        before = indexes()
        assert before >= OLD | {WORKFLOW_OWN} and not before & KEYED, before
        migrate(url, "workflows")
        assert indexes() == after
    finally:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.close()
