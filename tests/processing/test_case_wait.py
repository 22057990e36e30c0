"""POST …/cases/?wait=N: the answer waits for the case's routing, at most N seconds."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest
from django.db import connection

from processing import waiting
from tests.conftest import image_bytes
from workflows.models import Case, CaseStatus

URL = "/api/v1/workflows/line/cases/"


def post(client: Any, query: str = "", **fields: Any) -> Any:
    buffer = io.BytesIO(image_bytes("ok", seed=1))
    buffer.name = "part.png"
    return client.post(f"{URL}{query}", {"image": buffer, **fields}, format="multipart")


@pytest.fixture
def camera(make_workflow: Any, make_user: Any, member: Any, client_for: Any) -> Any:
    def make(level: str) -> Any:
        workflow = make_workflow("line", level=level)
        user = make_user("camera")
        member(user, workflow, submit=True)
        return client_for(user)

    return make


@pytest.mark.django_db
@pytest.mark.parametrize("wait", ["-1", "31", "abc", "1.5", "9" * 30])
def test_bad_wait_is_refused_before_anything_is_stored(camera: Any, wait: str) -> None:
    response = post(camera("shadow"), f"?wait={wait}")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "wait"
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_wait_max_is_configurable(camera: Any, settings: Any) -> None:
    settings.LOOPGATE_CASE_WAIT_MAX_SECONDS = 2
    assert post(camera("shadow"), "?wait=3").status_code == 400


@pytest.mark.django_db
def test_not_routed_in_time_answers_201_with_the_current_status(camera: Any, settings: Any) -> None:
    # No worker runs here (tests queue nothing in a rolled-back transaction).
    response = post(camera("shadow"), "?wait=1")
    assert response.status_code == 201
    assert response.json()["status"] == "received"


@pytest.mark.django_db
def test_human_only_is_routed_in_the_request(camera: Any) -> None:
    response = post(camera("human_only"), "?wait=5")
    assert response.status_code == 201
    assert response.json()["status"] == "in_review"


@pytest.mark.django_db
def test_existing_external_id_is_200_and_routed(camera: Any) -> None:
    client = camera("human_only")
    assert post(client, "?wait=1", external_id="k").status_code == 201
    again = post(client, "?wait=1", external_id="k")
    assert again.status_code == 200
    assert again.json()["status"] == "in_review"


@pytest.mark.django_db(transaction=True)
def test_woken_by_the_routing_of_its_case(camera: Any, settings: Any, monkeypatch: Any) -> None:
    """A case routed by someone else while the request waits: it answers with it.

    The worker's side is played by a thread that routes the case once it exists.
    """
    from tests.conftest import require_postgres_and_redis

    require_postgres_and_redis()
    waiting._client = None
    client = camera("shadow")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from processing import services

    queued: list[str] = []
    monkeypatch.setattr(
        services,
        "case_queue_processing",
        lambda *, case_id, workflow_id: queued.append(str(case_id)),
    )

    def route_when_created() -> None:
        for _ in range(200):
            if queued:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        try:
            services.cases_process(case_ids=queued[:1])
        finally:
            connection.close()

    thread = threading.Thread(target=route_when_created)
    thread.start()
    try:
        response = post(client, "?wait=20")
    finally:
        thread.join()
    assert response.status_code == 201
    assert response.json()["status"] == CaseStatus.IN_REVIEW
