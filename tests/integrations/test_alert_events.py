"""Alerts announce themselves to webhooks: ``alert.fired`` / ``alert.resolved`` are written
to the outbox in the transaction that fires or resolves the alert (D90)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

from automation.models import Alert, AlertKind, AlertState
from automation.services import _alerts_resolve, alert_acknowledge, alert_raise, alert_resolve
from integrations.models import WebhookDelivery, WebhookEvent
from tests.integrations.receiver import Receiver, receiver
from tests.integrations.test_delivery import drain, hook

pytestmark = pytest.mark.django_db


@pytest.fixture
def rx(settings: Any) -> Any:
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with receiver() as state:
        yield state


def fire(home: dict[str, Any], message: str = "brightness moved") -> Alert:
    return alert_raise(
        workflow=home["workflow"], kind=AlertKind.INPUT_DRIFT, message=message, data={"x": 1}
    )


# --- Unhappy paths first ------------------------------------------------------------------


def test_an_alert_that_rolls_back_is_never_announced(home: dict[str, Any], rx: Receiver) -> None:
    hook(home, rx.url, ["alert.fired"])
    with pytest.raises(RuntimeError), transaction.atomic():
        fire(home)
        raise RuntimeError("the check failed after the alert was raised")
    assert not Alert.objects.exists()
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_no_subscriber_no_event_and_the_alert_still_fires(home: dict[str, Any]) -> None:
    alert = fire(home)
    _alerts_resolve(workflow=home["workflow"], kind=AlertKind.INPUT_DRIFT, resolution="ok")
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert not WebhookEvent.objects.exists()


def test_a_refused_move_emits_nothing(home: dict[str, Any], rx: Receiver) -> None:
    from kernel.errors import DomainError

    hook(home, rx.url, ["alert.resolved"])
    alert = fire(home)
    alert_resolve(alert=alert, actor=home["admin"], note="fixed the lamp")
    with pytest.raises(DomainError):
        alert_resolve(alert=alert, actor=home["admin"], note="again")
    with pytest.raises(DomainError):
        alert_resolve(alert=fire(home), actor=home["admin"], note="")  # a note is required
    assert WebhookEvent.objects.filter(type="alert.resolved").count() == 1


def test_acknowledging_is_not_an_event(home: dict[str, Any], rx: Receiver) -> None:
    hook(home, rx.url, ["alert.fired", "alert.resolved"])
    alert = fire(home)
    alert_acknowledge(alert=alert, actor=home["admin"], note="on it")
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["alert.fired"]


# --- What it does -------------------------------------------------------------------------


def test_fired_then_resolved_by_a_person_are_delivered_in_order(
    home: dict[str, Any], rx: Receiver
) -> None:
    webhook, _ = hook(home, rx.url, ["alert.fired", "alert.resolved"])
    alert = fire(home)
    event = WebhookEvent.objects.get()
    assert event.type == "alert.fired" and event.workflow_id == home["workflow"].pk
    assert event.payload["alert"]["id"] == alert.pk
    assert event.payload["alert"]["state"] == "firing"
    alert_resolve(alert=alert, actor=home["admin"], note="fixed the lamp")
    assert drain(webhook) == 2
    bodies = [json.loads(r.body) for r in rx.wait(2)]
    assert [b["type"] for b in bodies] == ["alert.fired", "alert.resolved"]
    fired, resolved = (b["data"]["alert"] for b in bodies)
    assert fired == {
        "id": alert.pk,
        "kind": "input_drift",
        "state": "firing",
        "message": "brightness moved",
        "data": {"x": 1},
        "created_at": fired["created_at"],
        "resolved_at": None,
        "resolution": "",
    }
    assert fired["created_at"]
    assert resolved["id"] == alert.pk and resolved["state"] == "resolved"
    assert resolved["resolved_at"] and "fixed the lamp" in resolved["resolution"]


def test_a_check_that_resolves_several_alerts_emits_one_event_each(
    home: dict[str, Any], rx: Receiver
) -> None:
    hook(home, rx.url, ["alert.resolved"])
    first, second = fire(home, "one"), fire(home, "two")
    alert_acknowledge(alert=second, actor=home["admin"], note="on it")
    other = alert_raise(
        workflow=home["workflow"], kind=AlertKind.ACCURACY_ESTIMATE, message="low", data={}
    )
    resolved = _alerts_resolve(
        workflow=home["workflow"], kind=AlertKind.INPUT_DRIFT, resolution="light is back"
    )
    assert resolved == 2
    events = WebhookEvent.objects.filter(type="alert.resolved")
    assert sorted(e.payload["alert"]["id"] for e in events) == sorted([first.pk, second.pk])
    assert all(e.payload["alert"]["resolution"] == "light is back" for e in events)
    other.refresh_from_db()
    assert other.state == AlertState.FIRING
    # Already resolved: a second run changes nothing and announces nothing.
    assert (
        _alerts_resolve(workflow=home["workflow"], kind=AlertKind.INPUT_DRIFT, resolution="x") == 0
    )
    assert events.count() == 2
