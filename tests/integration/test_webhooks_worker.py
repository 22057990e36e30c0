"""Webhooks end to end with a real Celery worker (and its beat) over Redis, delivering to
a local HTTP receiver: signatures verify, a 500 is retried after its backoff, a delivery
dies after N failures and comes back when redelivered, events of a case arrive in order.
"""

from __future__ import annotations

import io
import itertools
import json
import statistics
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from integrations.signing import signature_verify
from tests.conftest import image_bytes, require_postgres_and_redis
from tests.integration.conftest import WorkerProcess, purge_broker, wait_for, worker_env
from tests.integrations.receiver import Receiver, receiver
from workflows.models import Case, CaseStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MAX_ATTEMPTS = 3


@pytest.fixture
def hook_worker(transactional_db: None, settings: Any, tmp_path: Path) -> Iterator[WorkerProcess]:
    require_postgres_and_redis()
    from loopgate.celery import app as celery_app

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    env = worker_env(
        tmp_path,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        LOOPGATE_MEDIA_ROOT=settings.MEDIA_ROOT,
        LOOPGATE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        LOOPGATE_WEBHOOK_BACKOFF_BASE_SECONDS="0.5",
        LOOPGATE_WEBHOOK_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        LOOPGATE_WEBHOOK_DISPATCH_SECONDS="0.5",
    )
    purge_broker()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        celery_app.conf.task_always_eager = previous
        purge_broker()
        out = Path(__file__).resolve().parents[2] / "test-output"
        out.mkdir(exist_ok=True)
        (out / "integration-webhooks-worker.log").write_text(
            (tmp_path / "worker.log").read_text()[-200_000:]
        )


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


@pytest.fixture
def line(make_workflow: Any, make_user: Any, member: Any, client_for: Any) -> dict[str, Any]:
    workflow = make_workflow("line", level="shadow")
    admin, camera, reviewer = make_user("ada"), make_user("camera"), make_user("rita")
    member(admin, workflow, admin=True, review=True)
    member(camera, workflow, submit=True)
    member(reviewer, workflow, review=True)
    return {
        "workflow": workflow,
        "admin": client_for(admin),
        "camera": client_for(camera),
        "reviewer": reviewer,
    }


def register(line: dict[str, Any], url: str, events: list[str]) -> dict[str, Any]:
    response = line["admin"].post(
        "/api/v1/workflows/line/webhooks/", {"url": url, "events": events}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def submit(line: dict[str, Any], seed: int) -> str:
    buffer = io.BytesIO(image_bytes("ok", seed=seed))
    buffer.name = "part.png"
    response = line["camera"].post(
        "/api/v1/workflows/line/cases/", {"image": buffer}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_signed_retried_in_order_and_latency(
    hook_worker: WorkerProcess, rx: Receiver, line: dict[str, Any]
) -> None:
    from review.services import review_next, verdict_submit

    hook = register(line, rx.url, ["case.in_review", "case.decided"])
    rx.script = [500]  # the first delivery fails once
    ids = [submit(line, seed) for seed in range(10)]
    wait_for(
        lambda: Case.objects.filter(id__in=ids, status=CaseStatus.IN_REVIEW).count() == 10,
        timeout=120,
        what="cases routed to review by the worker",
    )
    requests = rx.wait(11, timeout=60)  # ten events, one of them twice
    for request in requests:
        assert signature_verify(
            secret=hook["secret"],
            header=request.headers["Loopgate-Signature"],
            body=request.body,
        )
    events = [json.loads(r.body) for r in requests]
    assert {e["data"]["case"]["id"] for e in events} == set(ids)
    retried = [e for e in events if events.count(e) == 2]
    assert retried, "the event that got a 500 was delivered again, with the same id"
    assert int(requests[1].headers["Loopgate-Attempt"]) in (1, 2)

    # A human decides the cases: each case's decided event comes after its in_review.
    for _ in range(3):
        assignment = review_next(workflow=line["workflow"], reviewer=line["reviewer"])
        assert assignment is not None
        verdict_submit(task_id=assignment.task_id, reviewer=line["reviewer"], label="ok")
    requests = rx.wait(14, timeout=60)
    seen: dict[str, list[str]] = {}
    for request in requests:
        body = json.loads(request.body)
        types = seen.setdefault(body["data"]["case"]["id"], [])
        if body["type"] not in types:
            types.append(body["type"])
    assert sum(types == ["case.in_review", "case.decided"] for types in seen.values()) == 3
    assert all(types[0] == "case.in_review" for types in seen.values())

    # Delivery latency: event written -> receiver got it (first successful attempts).
    created = {str(e.id): e.created_at.timestamp() for e in WebhookEvent.objects.all()}
    latencies = []
    first_seen: dict[str, float] = {}
    for request in requests:
        event_id = json.loads(request.body)["id"]
        first_seen.setdefault(event_id, request.at)
    for event_id, at in first_seen.items():
        latencies.append((at - created[event_id]) * 1000)
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"\nwebhook delivery latency (event written -> received), n={len(latencies)}: "
        f"p50 {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms"
    )


def test_dead_after_n_then_redelivered(
    hook_worker: WorkerProcess, rx: Receiver, line: dict[str, Any]
) -> None:
    hook = register(line, rx.url, ["case.in_review"])
    rx.default = 500
    case_id = submit(line, 1)
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DEAD).first(),
        timeout=90,
        what="the delivery to die",
    )
    assert delivery.attempts == MAX_ATTEMPTS
    assert len(rx.requests) == MAX_ATTEMPTS
    log = line["admin"].get(f"/api/v1/workflows/line/webhooks/{hook['id']}/deliveries/").json()
    assert [a["status_code"] for a in log["results"][0]["log"]] == [500] * MAX_ATTEMPTS
    stamps = [r.at for r in rx.requests]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps[1] > gaps[0] * 1.2 or gaps[1] >= 0.9  # backoff grows (0.5 s, then 1 s)

    rx.default = 200
    response = line["admin"].post(
        f"/api/v1/workflows/line/webhooks/{hook['id']}/deliveries/{delivery.pk}/redeliver/"
    )
    assert response.status_code == 202, response.content
    wait_for(
        lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="succeeded").exists(),
        timeout=60,
        what="the redelivery",
    )
    bodies = [json.loads(r.body) for r in rx.requests]
    assert len({b["id"] for b in bodies}) == 1
    assert bodies[-1]["data"]["case"]["id"] == case_id
    assert isinstance(datetime.fromisoformat(bodies[-1]["created_at"]), datetime)


def test_an_alert_fired_and_resolved_reach_the_receiver_signed(
    hook_worker: WorkerProcess, rx: Receiver, line: dict[str, Any]
) -> None:
    """An alert raised by a check and resolved by a person: the worker delivers
    ``alert.fired`` then ``alert.resolved`` for the same alert, both signed (D90)."""
    from django.contrib.auth import get_user_model

    from automation.models import AlertKind
    from automation.services import alert_raise, alert_resolve

    hook = register(line, rx.url, ["alert.fired", "alert.resolved"])
    alert = alert_raise(
        workflow=line["workflow"],
        kind=AlertKind.INPUT_DRIFT,
        message="Drift in brightness",
        data={"metrics": ["brightness"]},
    )
    [fired] = rx.wait(1, timeout=60)
    admin = get_user_model().objects.get(username="ada")
    alert_resolve(alert=alert, actor=admin, note="the lamp was replaced")
    requests = rx.wait(2, timeout=60)
    for request in requests:
        assert signature_verify(
            secret=hook["secret"],
            header=request.headers["Loopgate-Signature"],
            body=request.body,
        )
    bodies = [json.loads(r.body) for r in requests]
    assert [b["type"] for b in bodies] == ["alert.fired", "alert.resolved"]
    assert {b["data"]["alert"]["id"] for b in bodies} == {alert.pk}
    assert bodies[0]["data"]["alert"]["data"] == {"metrics": ["brightness"]}
    assert "the lamp was replaced" in bodies[1]["data"]["alert"]["resolution"]
    assert fired.body == requests[0].body
