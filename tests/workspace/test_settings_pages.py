"""The New workflow page and the settings pages: same services, same refusals as the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from workflows.models import Workflow, WorkflowMembership
from workspace.models import WorkflowToken
from workspace.services import workflow_creator_grant

pytestmark = pytest.mark.django_db

SECTIONS = (
    "settings",
    "settings-labels",
    "settings-review",
    "settings-members",
    "settings-tokens",
    "settings-training",
)


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def home(make_workflow: Any, make_user: Any, member: Any) -> dict[str, Any]:
    workflow = make_workflow("home", level="human_only", serving=False)
    other = make_workflow("other", level="human_only", serving=False)
    people = {name: make_user(name) for name in ("ada", "rita", "olga")}
    member(people["ada"], workflow, review=True, admin=True)
    member(people["rita"], workflow, review=True)
    member(people["olga"], other, review=True, admin=True)
    return {"workflow": workflow, **people}


def test_the_new_workflow_page_needs_the_permission(make_user: Any) -> None:
    plain = browser(make_user("plain"))
    assert plain.get(reverse("workspace:create")).status_code == 403
    body = {"slug": "pcb", "name": "PCB", "labels": "a\nb"}
    assert plain.post(reverse("workspace:create"), body).status_code == 403
    assert not Workflow.objects.exists()
    assert Client().get(reverse("workspace:create")).status_code == 302  # to the login page


def test_the_new_workflow_page_creates_one_or_says_what_is_wrong(make_user: Any) -> None:
    cora = make_user("cora")
    workflow_creator_grant(user=cora)
    client = browser(get_user_model().objects.get(pk=cora.pk))
    page = reverse("workspace:create")
    refused = client.post(page, {"slug": "PCB!", "name": "PCB", "labels": "a\nb"})
    assert refused.status_code == 400 and b"lower-case letters" in refused.content
    refused = client.post(page, {"slug": "pcb", "name": "PCB", "labels": "only"})
    assert refused.status_code == 400 and b"between 2 and 100" in refused.content
    assert not Workflow.objects.exists()
    done = client.post(page, {"slug": "pcb", "name": "PCB", "labels": "0\n1\n2\n\n3"})
    assert done.status_code == 302
    assert done["Location"] == reverse("workspace:settings-members", args=["pcb"])
    workflow = Workflow.objects.get(slug="pcb")
    assert (workflow.labels, workflow.level) == (["0", "1", "2", "3"], "human_only")
    taken = client.post(page, {"slug": "pcb", "name": "PCB", "labels": "a\nb"})
    assert taken.status_code == 409 and b"already exists" in taken.content


@pytest.mark.parametrize("section", SECTIONS)
def test_who_reaches_the_settings(home: dict[str, Any], section: str) -> None:
    page = reverse(f"workspace:{section}", args=["home"])
    assert browser(home["olga"]).get(page).status_code == 404
    assert browser(home["rita"]).get(page).status_code == 403
    assert browser(home["rita"]).post(page, {"action": "save", "name": "x"}).status_code == 403
    response = browser(home["ada"]).get(page)
    assert response.status_code == 200
    for other in SECTIONS:  # the settings sub-navigation
        assert reverse(f"workspace:{other}", args=["home"]).encode() in response.content


def test_general_saves_and_previews_sanitised_instructions(home: dict[str, Any]) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings", args=["home"])
    text = "## Rules\n\n<script>alert(1)</script> **bold**"
    response = client.post(page, {"action": "save", "name": "Home", "instructions": text})
    assert response.status_code == 302
    html = client.get(page).content.decode()
    assert "<h2>Rules</h2>" in html and "<strong>bold</strong>" in html
    assert "<script>alert" not in html


def test_archiving_asks_for_the_slug(home: dict[str, Any]) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings", args=["home"])
    wrong = client.post(page, {"action": "archive", "confirm_slug": "nope"})
    assert wrong.status_code == 400 and b"Type home to confirm" in wrong.content
    assert Workflow.objects.get(slug="home").archived_at is None
    assert client.post(page, {"action": "archive", "confirm_slug": "home"}).status_code == 302
    assert Workflow.objects.get(slug="home").archived_at is not None
    assert b"Unarchive" in client.get(page).content
    assert client.post(page, {"action": "unarchive", "confirm_slug": "home"}).status_code == 302
    assert Workflow.objects.get(slug="home").archived_at is None


def test_label_keys_colours_and_new_labels(home: dict[str, Any]) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings-labels", args=["home"])
    html = client.get(page).content.decode()
    assert 'placeholder="1"' in html  # "ok" gets the default key 1
    refused = client.post(page, {"action": "keys", "key-0": "s"})
    assert refused.status_code == 400 and b"review screen key" in refused.content
    saved = client.post(page, {"action": "keys", "key-0": "k", "color-1": "#123456"})
    assert saved.status_code == 302
    assert Workflow.objects.get(slug="home").label_settings == {
        "ok": {"key": "k"},
        "scratch": {"color": "#123456"},
    }
    added = client.post(page, {"action": "add", "new_labels": "dent\nburr"})
    assert added.status_code == 302
    assert Workflow.objects.get(slug="home").labels[-2:] == ["dent", "burr"]
    twice = client.post(page, {"action": "add", "new_labels": "OK"})
    assert twice.status_code == 400 and b"given twice" in twice.content


def test_review_settings(home: dict[str, Any]) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings-review", args=["home"])
    values = {
        "consensus_required": 2,
        "gold_rate": 0.1,
        "review_lease_seconds": 900,
        "skip_delay_seconds": 30,
        "max_skips": 4,
        "hidden_suggestion_rate": 0.25,
    }
    assert client.post(page, {**values, "review_lease_seconds": 1}).status_code == 400
    assert client.post(page, values).status_code == 302
    workflow = Workflow.objects.get(slug="home")
    assert {name: getattr(workflow, name) for name in values} == values


def test_members_page_invites_with_a_link_shown_once(home: dict[str, Any]) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings-members", args=["home"])
    response = client.post(page, {"action": "invite", "username": "nina", "role": "reviewer"})
    assert response.status_code == 201
    html = response.content.decode()
    assert "/account/set-password/" in html and "shown only now" in html
    assert "/account/set-password/" not in client.get(page).content.decode()
    assert b"invited, no password yet" in client.get(page).content

    last = client.post(page, {"action": "role", "username": "ada", "role": "reviewer"})
    assert last.status_code == 409 and b"last admin" in last.content
    assert (
        client.post(page, {"action": "role", "username": "rita", "role": "admin"}).status_code
        == 302
    )
    assert WorkflowMembership.objects.get(user=home["rita"]).can_admin
    assert client.post(page, {"action": "remove", "username": "nina"}).status_code == 302
    assert not WorkflowMembership.objects.filter(user__username="nina").exists()


def test_tokens_page_shows_the_key_once(home: dict[str, Any]) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings-tokens", args=["home"])
    assert client.post(page, {"action": "create", "name": ""}).status_code == 400
    response = client.post(page, {"action": "create", "name": "line 1", "expires_in_days": 7})
    assert response.status_code == 201
    row = WorkflowToken.objects.get()
    html = response.content.decode()
    assert "shown only this once" in html
    key = html.split('data-testid="token-key"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert key.startswith(row.token.key_prefix) and len(key) > 30
    assert key not in client.get(page).content.decode()
    revoke = client.post(page, {"action": "revoke", "token_id": row.token_id})
    assert revoke.status_code == 302
    row.token.refresh_from_db()
    assert row.token.revoked_at is not None
