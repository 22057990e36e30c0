"""Health probes, metrics, the OpenAPI schema, settings safety and the demo bootstrap."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[1]


def test_healthz_needs_no_login(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_broker_and_models(
    client: Any, make_workflow: Any, settings: Any, tmp_path: Path
) -> None:
    settings.CELERY_BROKER_URL = "filesystem://"
    make_workflow("ready", level="full")
    from loopgate.celery import app

    app.conf.broker_url = "filesystem://"
    app.conf.broker_transport_options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
    }
    try:
        response = client.get("/readyz")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["checks"] == {
            "database": "ok",
            "broker": "ok",
            "models": "ok",
            "workers": "ok",
            "scheduler": "ok",
        }
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL


@pytest.mark.django_db
def test_readyz_fails_when_the_serving_model_cannot_load(
    client: Any, make_workflow: Any, demo_model_version: Any
) -> None:
    from inference.loader import clear_cache

    clear_cache()
    make_workflow("broken", level="full")
    demo_model_version.weights.storage.delete(demo_model_version.weights.name)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "broken" in response.json()["checks"]["models"]


@pytest.mark.django_db
def test_metrics_expose_queue_and_case_counts(
    client: Any, make_workflow: Any, make_user: Any, member: Any, client_for: Any, settings: Any
) -> None:
    settings.LOOPGATE_METRICS_TOKEN = "scrape-token-for-tests"
    import io

    from tests.conftest import image_bytes

    workflow = make_workflow("m", level="human_only", serving=False)
    user = make_user("cam")
    member(user, workflow, submit=True)
    buffer = io.BytesIO(image_bytes())
    buffer.name = "a.png"
    client_for(user).post("/api/v1/workflows/m/cases/", {"image": buffer}, format="multipart")
    text = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests"
    ).content.decode()
    assert 'loopgate_cases{status="in_review",workflow="m"} 1.0' in text
    assert 'loopgate_review_queue_depth{workflow="m"} 1.0' in text
    assert "loopgate_review_queue_oldest_age_seconds" in text


@pytest.mark.django_db
def test_openapi_schema_names_the_public_contract(client: Any, make_user: Any) -> None:
    assert client.get("/api/schema/").status_code in {401, 403}
    client.force_login(make_user("reader"))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = schema["paths"]
    for path in (
        "/api/v1/workflows/{slug}/cases/",
        "/api/v1/cases/{case_id}/",
        "/api/v1/workflows/",
        "/api/v1/workflows/{slug}/",
        "/api/v1/workflows/{slug}/stats/",
    ):
        assert path in paths, path
    assert any(p.endswith("/automation/") for p in paths)
    assert client.get("/api/docs/").status_code == 200


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOOPGATE_"))}
    env["DJANGO_SETTINGS_MODULE"] = "loopgate.settings"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_settings_are_not_debug_and_allow_no_host_by_default() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOOPGATE_"))}
    env.update(DJANGO_SETTINGS_MODULE="loopgate.settings", DJANGO_SECRET_KEY="x" * 50)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.ALLOWED_HOSTS, s.SESSION_COOKIE_SECURE)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False [] True"


@pytest.mark.django_db
def test_bootstrap_demo_is_repeatable_and_prints_json(capsys: Any, settings: Any) -> None:
    call_command("bootstrap_demo", "--json")
    first = json.loads(capsys.readouterr().out)
    call_command("bootstrap_demo", "--json")
    second = json.loads(capsys.readouterr().out)
    assert first == second
    assert set(first) == {"workflow", "api_token", "metrics_token", "reviewer", "admin"}
    for role in ("reviewer", "admin"):
        assert set(first[role]) == {"username", "password", "api_token"}

    from django.contrib.auth import authenticate

    assert authenticate(username="reviewer", password=first["reviewer"]["password"])
    assert authenticate(username="admin", password=first["admin"]["password"])

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first['api_token']}")
    workflow = client.get(f"/api/v1/workflows/{first['workflow']}/").json()
    assert workflow["serving_model_version"] == "surface-cnn:v1"
    assert workflow["automation"]["level"] == "shadow"

    from modelops.models import ModelVersion
    from workflows.models import Workflow

    assert Workflow.objects.count() == 1
    assert ModelVersion.objects.count() == 1

    from accounts.models import ApiToken

    # Keys are stored only as hashes; a rerun reuses the demo tokens rather than piling up.
    assert ApiToken.objects.count() == 3
    assert not ApiToken.objects.filter(key_hash__contains=first["api_token"]).exists()

    # A demo key that stopped working (revoked) is replaced by a working one on rerun.
    from accounts.selectors import api_token_for_key
    from accounts.services import api_token_revoke

    api_token_revoke(token_id=api_token_for_key(first["api_token"]).pk)
    call_command("bootstrap_demo", "--json")
    third = json.loads(capsys.readouterr().out)
    assert third["api_token"] != first["api_token"]
    assert third["reviewer"] == first["reviewer"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {third['api_token']}")
    assert client.get(f"/api/v1/workflows/{first['workflow']}/").status_code == 200

    # The metrics token it prints opens /metrics when the server has it in its environment.
    settings.LOOPGATE_METRICS_TOKEN = first["metrics_token"]
    scrape = APIClient().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {first['metrics_token']}")
    assert scrape.status_code == 200


@pytest.mark.django_db
class TestReadinessSeesCasesNobodyTakes:
    """/readyz is not ready when cases wait and no worker has taken one for a while."""

    def waiting_case(self, make_workflow: Any, *, seconds_ago: int) -> Any:
        from datetime import timedelta

        from django.utils import timezone

        from processing.services import case_create
        from tests.conftest import image_bytes
        from workflows.models import Case

        workflow = make_workflow("waiting", level="full")
        case = case_create(
            workflow=workflow,
            image_data=image_bytes(),
            external_id=None,
            metadata={},
            submitted_by=None,
        ).case
        Case.objects.filter(id=case.id).update(
            created_at=timezone.now() - timedelta(seconds=seconds_ago)
        )
        return case

    def heartbeat(self, *, claimed_seconds_ago: int | None, seen_seconds_ago: int) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from workflows.models import WorkerHeartbeat

        now = timezone.now()
        WorkerHeartbeat.objects.create(
            name="host:1:a",
            hostname="host",
            pid=1,
            seen_at=now - timedelta(seconds=seen_seconds_ago),
            last_claim_at=None
            if claimed_seconds_ago is None
            else now - timedelta(seconds=claimed_seconds_ago),
        )

    def test_cases_waiting_with_no_worker_make_it_not_ready(
        self, client: Any, make_workflow: Any, settings: Any
    ) -> None:
        settings.LOOPGATE_READY_MAX_WAIT_SECONDS = 30
        self.waiting_case(make_workflow, seconds_ago=45)
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        # 45 s old when created; a slow machine may read it a second or two later.
        assert re.match(r"cases have waited 4[5-9] s for a worker", body["checks"]["workers"])
        assert "none has taken a case ever" in body["checks"]["workers"]
        assert body["reason"] == body["checks"]["workers"]

    def test_a_worker_that_stopped_taking_cases_makes_it_not_ready(
        self, client: Any, make_workflow: Any
    ) -> None:
        self.waiting_case(make_workflow, seconds_ago=300)
        self.heartbeat(claimed_seconds_ago=200, seen_seconds_ago=190)
        response = client.get("/readyz")
        assert response.status_code == 503
        # The seconds grow while the test runs on a loaded machine: read them, don't pin them.
        reason = response.json()["reason"]
        found = re.search(r"for (\d+) s; last worker heartbeat (\d+) s ago", reason)
        assert found, reason
        assert 200 <= int(found[1]) < 260 and 190 <= int(found[2]) < 250

    def test_a_backlog_that_is_being_worked_is_ready(self, client: Any, make_workflow: Any) -> None:
        self.waiting_case(make_workflow, seconds_ago=300)
        self.heartbeat(claimed_seconds_ago=2, seen_seconds_ago=1)
        response = client.get("/readyz")
        assert response.json()["checks"]["workers"] == "ok"

    def test_a_fresh_case_does_not_make_it_not_ready(self, client: Any, make_workflow: Any) -> None:
        self.waiting_case(make_workflow, seconds_ago=3)
        response = client.get("/readyz")
        assert response.json()["checks"]["workers"] == "ok"


@pytest.mark.django_db
class TestReadinessSeesAStoppedScheduler:
    """/readyz is not ready when the periodic sweep (celery beat) has stopped running."""

    def sweep_ran(self, *, seconds_ago: int) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from workflows.models import PeriodicRun

        PeriodicRun.objects.update_or_create(
            name="requeue-stalled-cases",
            defaults={"last_run_at": timezone.now() - timedelta(seconds=seconds_ago)},
        )

    def test_a_silent_scheduler_makes_it_not_ready_and_says_why(
        self, client: Any, settings: Any
    ) -> None:
        settings.LOOPGATE_READY_MAX_SCHEDULER_SILENCE_SECONDS = 90
        self.sweep_ran(seconds_ago=300)
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert "is celery beat running?" in body["checks"]["scheduler"]
        assert "last ran 300 s ago" in body["reason"]

    def test_a_recent_sweep_is_ready(self, client: Any, settings: Any) -> None:
        settings.LOOPGATE_READY_MAX_SCHEDULER_SILENCE_SECONDS = 90
        self.sweep_ran(seconds_ago=10)
        response = client.get("/readyz")
        assert response.json()["checks"]["scheduler"] == "ok"

    def test_before_the_first_sweep_there_is_nothing_to_judge(self, client: Any) -> None:
        assert client.get("/readyz").json()["checks"]["scheduler"] == "ok"

    def test_only_the_schedulers_call_is_recorded(self) -> None:
        from processing.tasks import cases_requeue_stalled
        from workflows.models import PeriodicRun

        cases_requeue_stalled()
        cases_requeue_stalled(received_older_than=5)
        assert not PeriodicRun.objects.exists()
        cases_requeue_stalled(periodic=True)
        assert PeriodicRun.objects.get().name == "requeue-stalled-cases"

    def test_the_beat_schedule_marks_the_sweep_periodic(self, settings: Any) -> None:
        entry = settings.CELERY_BEAT_SCHEDULE["requeue-stalled-cases"]
        assert entry["kwargs"] == {"periodic": True}
