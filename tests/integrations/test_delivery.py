"""Events into the outbox, and deliveries to a real local HTTP receiver (in process).

The worker-driven path (Celery drains, the periodic dispatch) is in
tests/integration/test_webhooks_worker.py; here each step is called directly.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from integrations import services, ssrf
from integrations.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from integrations.signing import signature_verify
from tests.conftest import image_bytes
from tests.integrations.receiver import Receiver, receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def rx(settings: Any) -> Any:
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LOOPGATE_WEBHOOK_MAX_ATTEMPTS = 3
    settings.LOOPGATE_WEBHOOK_BACKOFF_BASE_SECONDS = 10
    with receiver() as state:
        yield state


def hook(home: dict[str, Any], url: str, events: list[str]) -> tuple[Webhook, str]:
    created = services.webhook_create(
        workflow=home["workflow"], url=url, events=events, actor=home["admin"]
    )
    return created.webhook, created.secret


def submit(home: dict[str, Any], *, seed: int, external_id: str | None = None) -> str:
    buffer = io.BytesIO(image_bytes("ok", seed=seed))
    buffer.name = "part.png"
    fields: dict[str, Any] = {"image": buffer}
    if external_id:
        fields["external_id"] = external_id
    response = home["camera_client"].post(
        "/api/v1/workflows/home/cases/", fields, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def drain(webhook: Webhook) -> int:
    return services.webhook_drain(webhook_id=webhook.pk)


def due_now() -> None:
    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now()
    )


# --- Unhappy paths first ------------------------------------------------------------------


def test_a_rolled_back_move_leaves_no_event(home: dict[str, Any], rx: Receiver) -> None:
    hook(home, rx.url, ["case.in_review"])
    with pytest.raises(RuntimeError), transaction.atomic():
        submit(home, seed=1)
        raise RuntimeError("the request failed after the case moved")
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_no_subscriber_no_rows(home: dict[str, Any], rx: Receiver) -> None:
    hook(home, rx.url, ["level.changed"])
    submit(home, seed=1)
    assert not WebhookEvent.objects.exists()


def test_retry_after_500_with_backoff_then_dead_after_n(home: dict[str, Any], rx: Receiver) -> None:
    webhook, _ = hook(home, rx.url, ["case.in_review"])
    submit(home, seed=1)
    rx.script = [500, 503, 500]
    delivery = WebhookDelivery.objects.get()

    assert drain(webhook) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 8 < wait <= 10  # base 10 s after the first failure
    assert drain(webhook) == 0  # not due yet

    due_now()
    drain(webhook)
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code) == (2, 503)
    assert 18 < (delivery.next_attempt_at - timezone.now()).total_seconds() <= 20

    due_now()
    drain(webhook)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert [a.status_code for a in delivery.log.all()] == [500, 503, 500]
    due_now()
    assert drain(webhook) == 0  # dead is not retried by itself

    services.delivery_redeliver(delivery=delivery, actor=home["admin"])
    assert drain(webhook) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    ids = {json.loads(r.body)["id"] for r in rx.requests}
    assert ids == {str(delivery.event_id)}  # the same event id every time
    assert len(rx.requests) == 4


def test_redirects_are_not_followed(home: dict[str, Any], rx: Receiver) -> None:
    rx.redirect_to = "http://169.254.169.254/latest/meta-data/"
    webhook, _ = hook(home, f"http://127.0.0.1:{rx.port}/redirect", ["case.in_review"])
    submit(home, seed=1)
    drain(webhook)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_status_code == 302
    assert delivery.last_error == "redirect not followed"
    assert len(rx.requests) == 1  # nothing went to the redirect's target


def test_loopback_refused_at_delivery_when_no_longer_allowed(
    home: dict[str, Any], rx: Receiver, settings: Any
) -> None:
    webhook, _ = hook(home, rx.url, ["case.in_review"])
    submit(home, seed=1)
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = []
    drain(webhook)
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("refused: url:")
    assert rx.requests == []


@pytest.mark.parametrize("internal", ["127.0.0.1", "10.0.0.9", "169.254.169.254"])
def test_dns_rebinding_is_caught_at_delivery(
    home: dict[str, Any], rx: Receiver, settings: Any, monkeypatch: Any, internal: str
) -> None:
    """The name resolved to a public address at registration, to an internal one later."""
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = []
    answers = {"hooks.example.com": ["93.184.215.14"]}
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: answers[host])
    webhook, _ = hook(home, f"http://hooks.example.com:{rx.port}/hook", ["case.in_review"])
    submit(home, seed=1)
    answers["hooks.example.com"] = [internal]
    drain(webhook)
    delivery = WebhookDelivery.objects.get()
    assert internal in delivery.last_error
    assert delivery.last_error.startswith("refused:")
    assert rx.requests == []


def test_the_checked_address_is_the_one_connected_to(
    home: dict[str, Any], rx: Receiver, settings: Any, monkeypatch: Any
) -> None:
    """An allow-listed name is connected to at the address checked, with its Host header."""
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = ["receiver.test"]
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["127.0.0.1"])
    webhook, _ = hook(home, f"http://receiver.test:{rx.port}/hook", ["case.in_review"])
    submit(home, seed=1)
    drain(webhook)
    assert rx.requests[0].headers["Host"] == f"receiver.test:{rx.port}"


# --- Deliveries --------------------------------------------------------------------------


def test_signed_body_with_the_case_as_in_the_api(home: dict[str, Any], rx: Receiver) -> None:
    webhook, secret = hook(home, rx.url, ["case.in_review", "case.decided"])
    case_id = submit(home, seed=1, external_id="part-1")
    drain(webhook)
    [request] = rx.wait(1)
    assert signature_verify(
        secret=secret, header=request.headers["Loopgate-Signature"], body=request.body
    )
    body = json.loads(request.body)
    assert body["type"] == "case.in_review"
    assert body["workflow"] == "home"
    assert body["data"]["case"]["id"] == case_id
    assert body["data"]["case"]["external_id"] == "part-1"
    assert body["data"]["case"]["status"] == "in_review"
    assert body["data"]["from_status"] == "received"
    api = home["camera_client"].get(f"/api/v1/cases/{case_id}/").json()
    assert set(body["data"]["case"]) == set(api)
    assert request.headers["Loopgate-Event-Id"] == body["id"]
    assert request.headers["Content-Type"] == "application/json"

    # A human decides: case.decided follows, with the decision.
    from review.services import review_next, verdict_submit

    assignment = review_next(workflow=home["workflow"], reviewer=home["reviewer"])
    verdict_submit(task_id=assignment.task_id, reviewer=home["reviewer"], label="scratch")
    drain(webhook)
    decided = json.loads(rx.wait(2)[1].body)
    assert decided["type"] == "case.decided"
    assert decided["data"]["case"]["decision"]["label"] == "scratch"
    assert decided["data"]["case"]["decision"]["source"] == "human"


def test_in_order_per_case_others_not_held_up(home: dict[str, Any], rx: Receiver) -> None:
    """A failing delivery holds back later events of its case only."""
    from review.services import review_next, verdict_submit

    webhook, _ = hook(home, rx.url, ["case.in_review", "case.decided"])
    first = submit(home, seed=1)
    rx.script = [500]
    drain(webhook)  # first case's in_review fails once
    second = submit(home, seed=2)
    assignment = review_next(workflow=home["workflow"], reviewer=home["reviewer"])
    assert str(assignment.task.case_id) == first
    verdict_submit(task_id=assignment.task_id, reviewer=home["reviewer"], label="ok")
    drain(webhook)
    got = [
        (json.loads(r.body)["data"]["case"]["id"], json.loads(r.body)["type"]) for r in rx.requests
    ]
    # The first case's decision waits behind its failed in_review; the second case goes.
    assert got == [(first, "case.in_review"), (second, "case.in_review")]
    due_now()
    drain(webhook)
    got = [
        (json.loads(r.body)["data"]["case"]["id"], json.loads(r.body)["type"]) for r in rx.requests
    ]
    assert got[2:] == [(first, "case.in_review"), (first, "case.decided")]


def test_rotated_secret_signs_the_next_attempt(home: dict[str, Any], rx: Receiver) -> None:
    webhook, old = hook(home, rx.url, ["case.in_review"])
    submit(home, seed=1)
    new = services.webhook_secret_rotate(webhook=webhook)
    drain(webhook)
    [request] = rx.wait(1)
    header = request.headers["Loopgate-Signature"]
    assert signature_verify(secret=new, header=header, body=request.body)
    assert not signature_verify(secret=old, header=header, body=request.body)


def test_paused_webhook_keeps_its_deliveries_until_resumed(
    home: dict[str, Any], rx: Receiver
) -> None:
    webhook, _ = hook(home, rx.url, ["case.in_review"])
    services.webhook_update(webhook=webhook, active=False)
    submit(home, seed=1)
    assert not WebhookDelivery.objects.exists()  # paused: not subscribed meanwhile
    services.webhook_update(webhook=webhook, active=True)
    submit(home, seed=2)
    assert drain(webhook) == 1


def test_level_change_promotion_and_alert_events(home: dict[str, Any], rx: Receiver) -> None:
    from automation.services import automation_update
    from modelops.models import Deployment
    from modelops.services import deployment_promote

    webhook, _ = hook(home, rx.url, ["level.changed", "model.promoted", "alert.fired"])
    workflow = home["workflow"]
    automation_update(
        workflow=workflow, actor=home["admin"], reason="try shadow", changes={"level": "shadow"}
    )
    serving = Deployment.objects.get(workflow=workflow, role="serving")
    Deployment.objects.create(workflow=workflow, model_version=serving.model_version, role="shadow")
    deployment_promote(workflow=workflow, actor=home["admin"], reason="better")
    services.alert_event_emit(
        workflow=workflow,
        alert=type("A", (), {"pk": 7, "kind": "latency", "state": "firing", "message": "slow"})(),
        fired=True,
    )
    drain(webhook)
    bodies = [json.loads(r.body) for r in rx.wait(3)]
    assert [b["type"] for b in bodies] == ["level.changed", "model.promoted", "alert.fired"]
    assert bodies[0]["data"]["level_change"]["to_level"] == "shadow"
    assert bodies[1]["data"]["deployment"]["promoted_from_role"] == "shadow"
    assert bodies[2]["data"]["alert"]["kind"] == "latency"


def test_deliveries_are_retained_by_event_id(home: dict[str, Any], rx: Receiver) -> None:
    hook(home, rx.url, ["case.in_review"])
    submit(home, seed=1)
    event = WebhookEvent.objects.get()
    assert event.created_at <= timezone.now() + timedelta(seconds=1)
    assert WebhookDelivery.objects.get().event_id == event.pk
