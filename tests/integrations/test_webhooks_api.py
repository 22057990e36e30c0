"""The webhook API: who may use it, what it refuses, and the secret shown once."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from tests.integrations.conftest import PUBLIC_URL

pytestmark = pytest.mark.django_db

BASE = "/api/v1/workflows/home/webhooks/"


def create(client: Any, **body: Any) -> Any:
    body.setdefault("url", PUBLIC_URL)
    body.setdefault("events", ["case.decided"])
    return client.post(BASE, body, format="json")


# --- Refusals first --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field_message"),
    [
        ("http://127.0.0.1:9/hook", "only public addresses"),
        ("http://10.0.0.8/hook", "only public addresses"),
        ("http://169.254.169.254/latest/meta-data", "only public addresses"),
        ("http://[::1]/hook", "only public addresses"),
        ("ftp://93.184.215.14/hook", "only http and https"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("not a url", "spaces or control"),
    ],
)
def test_internal_or_malformed_urls_are_refused(
    home: dict[str, Any], url: str, field_message: str
) -> None:
    response = create(home["admin_client"], url=url)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == "url"
    assert field_message in error["message"]
    assert not Webhook.objects.exists()


def test_allow_listed_loopback_is_accepted(home: dict[str, Any], settings: Any) -> None:
    settings.LOOPGATE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    response = create(home["admin_client"], url="http://127.0.0.1:9/hook")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["case.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"events": "case.decided"}, "events"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_events_and_unknown_fields_are_refused(
    home: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = create(home["admin_client"], **body)
    assert response.status_code == 400, response.content
    assert not Webhook.objects.exists()


def test_only_the_workflows_admins(
    home: dict[str, Any], make_user: Any, make_workflow: Any, member: Any, client_for: Any
) -> None:
    assert create(home["reviewer_client"]).status_code == 403
    assert create(home["camera_client"]).status_code == 403
    other_admin = make_user("olga")
    member(other_admin, make_workflow("other", level="human_only", serving=False), admin=True)
    outsider = client_for(other_admin)
    assert create(outsider).status_code == 404
    webhook_id = create(home["admin_client"]).json()["id"]
    for method in ("get", "patch", "delete"):
        assert getattr(outsider, method)(f"{BASE}{webhook_id}/").status_code == 404
    assert outsider.post(f"{BASE}{webhook_id}/rotate-secret/").status_code == 404
    assert outsider.get(f"{BASE}{webhook_id}/deliveries/").status_code == 404
    assert home["reviewer_client"].get(f"{BASE}{webhook_id}/").status_code == 403


def test_webhook_of_another_workflow_is_not_found_here(
    home: dict[str, Any], make_workflow: Any, member: Any
) -> None:
    other = make_workflow("other", level="human_only", serving=False)
    member(home["admin"], other, admin=True)
    response = home["admin_client"].post(
        "/api/v1/workflows/other/webhooks/",
        {"url": PUBLIC_URL, "events": ["case.decided"]},
        format="json",
    )
    webhook_id = response.json()["id"]
    assert home["admin_client"].get(f"{BASE}{webhook_id}/").status_code == 404
    assert home["admin_client"].get(f"{BASE}99999999999999999999999/").status_code == 404


def test_too_many_webhooks(home: dict[str, Any], settings: Any) -> None:
    settings.LOOPGATE_WEBHOOKS_PER_WORKFLOW = 2
    assert create(home["admin_client"]).status_code == 201
    assert create(home["admin_client"]).status_code == 201
    response = create(home["admin_client"])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "too_many_webhooks"


# --- What works ------------------------------------------------------------------------


def test_create_shows_the_secret_once_list_update_rotate_delete(home: dict[str, Any]) -> None:
    client = home["admin_client"]
    response = create(client, events=["case.decided", "case.in_review"], description="line 4")
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert body["events"] == ["case.decided", "case.in_review"]
    listed = client.get(BASE).json()
    assert [hook["id"] for hook in listed] == [body["id"]]
    assert "secret" not in listed[0]
    detail = client.get(f"{BASE}{body['id']}/").json()
    assert "secret" not in detail

    response = client.patch(
        f"{BASE}{body['id']}/", {"events": ["level.changed"], "active": False}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["events"] == ["level.changed"]
    assert response.json()["active"] is False
    bad = client.patch(f"{BASE}{body['id']}/", {"url": "http://192.168.0.2/"}, format="json")
    assert bad.status_code == 400
    assert Webhook.objects.get().url == PUBLIC_URL

    rotated = client.post(f"{BASE}{body['id']}/rotate-secret/").json()["secret"]
    assert rotated != secret
    assert Webhook.objects.get().secret == rotated

    assert client.delete(f"{BASE}{body['id']}/").status_code == 204
    assert client.get(f"{BASE}{body['id']}/").status_code == 404


def test_deliveries_log_and_redeliver(home: dict[str, Any]) -> None:
    client = home["admin_client"]
    webhook = Webhook.objects.get(pk=create(client).json()["id"])
    event = WebhookEvent.objects.create(
        workflow=home["workflow"], type="case.decided", ordering_key="k", payload={}
    )
    from django.utils import timezone

    delivery = WebhookDelivery.objects.create(
        webhook=webhook, event=event, ordering_key="k", next_attempt_at=timezone.now()
    )
    page = client.get(f"{BASE}{webhook.pk}/deliveries/").json()
    assert page["count"] == 1
    assert page["results"][0]["event_id"] == str(event.pk)
    assert client.get(f"{BASE}{webhook.pk}/deliveries/?status=nope").status_code == 400
    assert client.get(f"{BASE}{webhook.pk}/deliveries/?status=dead").json()["count"] == 0

    url = f"{BASE}{webhook.pk}/deliveries/{delivery.pk}/redeliver/"
    response = client.post(url)
    assert response.status_code == 409  # still pending
    assert response.json()["error"]["code"] == "already_pending"

    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, attempts=8)
    response = client.post(url)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 0
    assert client.post(f"{BASE}{webhook.pk}/deliveries/999999/redeliver/").status_code == 404
    assert home["reviewer_client"].post(url).status_code == 403
