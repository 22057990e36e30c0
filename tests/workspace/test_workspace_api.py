"""The workspace API: creating a workflow, its settings, archiving, members and tokens.

Unhappy paths first in each group: who may not, what is refused and with which field.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import image_bytes
from workflows.models import Case, Workflow, WorkflowMembership
from workspace.services import workflow_creator_grant

pytestmark = pytest.mark.django_db

LIST = "/api/v1/workflows/"


def url(slug: str, rest: str = "") -> str:
    return f"/api/v1/workflows/{slug}/{rest}"


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def assert_error(response: Any, status: int, field: str | None, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    if field is not None:
        assert error["field"] == field, error
    for word in words:
        assert word in error["message"].lower(), error["message"]
    return error


def new_workflow(**fields: Any) -> dict[str, Any]:
    body = {"slug": "pcb", "name": "PCB inspection", "labels": ["good", "bridge", "void"]}
    body.update(fields)
    return body


@pytest.fixture
def creator(make_user: Any) -> Any:
    user = make_user("cora")
    workflow_creator_grant(user=user)
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def home(make_workflow: Any, make_user: Any, member: Any) -> dict[str, Any]:
    """Workflow "home" with an admin and a reviewer; "other" with its own admin."""
    workflow = make_workflow("home", level="human_only", serving=False)
    other = make_workflow("other", level="human_only", serving=False)
    people = {name: make_user(name) for name in ("ada", "rita", "olga", "nobody")}
    member(people["ada"], workflow, review=True, admin=True)
    member(people["rita"], workflow, review=True)
    member(people["olga"], other, review=True, admin=True)
    return {"workflow": workflow, "other": other, **people}


def post_case(client: APIClient, slug: str, external_id: str = "part-1") -> Any:
    image = io.BytesIO(image_bytes())
    image.name = "part.png"
    return client.post(
        url(slug, "cases/"), {"image": image, "external_id": external_id}, format="multipart"
    )


# --- Creating a workflow ------------------------------------------------------------------


class TestCreate:
    def test_anonymous_and_users_without_the_permission_are_refused(self, make_user: Any) -> None:
        assert APIClient().post(LIST, new_workflow(), format="json").status_code in (401, 403)
        response = session(make_user("plain")).post(LIST, new_workflow(), format="json")
        assert_error(response, 403, None, "create workflows")
        assert not Workflow.objects.exists()

    @pytest.mark.parametrize(
        "field, value",
        [
            ("level", "full"),
            ("confidence_threshold", 0.5),
            ("audit_rate", 0),
            ("class_thresholds", {}),
        ],
    )
    def test_policy_fields_are_refused_naming_the_gated_endpoint(
        self, creator: Any, field: str, value: Any
    ) -> None:
        response = session(creator).post(LIST, new_workflow(**{field: value}), format="json")
        error = assert_error(response, 400, field, "human_only", "/automation/")
        assert error["code"] == "policy_field"
        assert not Workflow.objects.exists()

    @pytest.mark.parametrize(
        "changes, field, words",
        [
            ({"slug": "PCB"}, "slug", ["lower-case"]),
            ({"slug": "-pcb"}, "slug", ["starting"]),
            ({"slug": "a" * 65}, "slug", []),
            ({"slug": "new"}, "slug", ["reserved"]),
            ({"slug": 7}, "slug", []),
            ({"name": "  "}, "name", ["blank"]),
            ({"name": "x" * 201}, "name", ["200"]),
            ({"labels": ["only"]}, "labels", ["between 2"]),
            ({"labels": "good,bad"}, "labels", ["list"]),
            ({"labels": ["ok", "OK"]}, "labels", ["twice"]),
            ({"labels": ["ok", " "]}, "labels", ["blank"]),
            ({"labels": ["ok", "x" * 65]}, "labels", ["64"]),
            ({"labels": ["ok", 3]}, "labels", ["text"]),
            ({"labels": ["ok", "a\tb"]}, "labels", ["printable"]),
            ({"labels": [str(i) for i in range(101)]}, "labels", ["100"]),
            ({"consensus_required": 0}, "consensus_required", ["between 1 and 9"]),
            ({"review_lease_seconds": 5}, "review_lease_seconds", ["between 30"]),
            ({"gold_rate": "high"}, "gold_rate", ["number"]),
            ({"gold_rate": 0.9}, "gold_rate", ["0.5"]),
            ({"max_skips": 2.5}, "max_skips", ["whole"]),
            ({"hidden_suggestion_rate": True}, "hidden_suggestion_rate", ["number"]),
            ({"instructions": "x" * 20_001}, "instructions", ["20000"]),
            ({"label_settings": {"good": {"key": "s"}}}, "label_settings", ["screen key"]),
            ({"label_settings": {"good": {"key": "G"}}}, "label_settings", ["lower case"]),
            (
                {"label_settings": {"good": {"key": "g"}, "void": {"key": "g"}}},
                "label_settings",
                ["already the key"],
            ),
            ({"label_settings": {"good": {"color": "red"}}}, "label_settings", ["colour"]),
            ({"label_settings": {"nope": {"key": "x"}}}, "label_settings", ["not one of"]),
            ({"label_settings": {"good": {"hotkey": "x"}}}, "label_settings", ["unknown"]),
            ({"label_settings": ["good"]}, "label_settings", []),
            ({"owner": "me"}, "owner", ["unknown"]),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(
        self, creator: Any, changes: dict[str, Any], field: str, words: list[str]
    ) -> None:
        response = session(creator).post(LIST, new_workflow(**changes), format="json")
        assert_error(response, 400, field, *words)
        assert not Workflow.objects.exists()

    @pytest.mark.parametrize("missing", ["slug", "name", "labels"])
    def test_required_fields(self, creator: Any, missing: str) -> None:
        body = new_workflow()
        del body[missing]
        assert_error(session(creator).post(LIST, body, format="json"), 400, missing, "required")

    def test_a_taken_slug_is_a_conflict(self, creator: Any, home: dict[str, Any]) -> None:
        response = session(creator).post(LIST, new_workflow(slug="home"), format="json")
        assert assert_error(response, 409, "slug", "already exists")["code"] == "slug_taken"

    def test_the_creator_becomes_admin_and_it_starts_at_human_only(self, creator: Any) -> None:
        body = new_workflow(
            labels=[str(digit) for digit in range(10)],
            instructions="# Look for *bridges*",
            consensus_required=2,
            gold_rate=0.05,
            review_lease_seconds=600,
            label_settings={"3": {"color": "#AA0000"}},
        )
        response = session(creator).post(LIST, body, format="json")
        assert response.status_code == 201, response.content
        data = response.json()
        assert data["automation"]["level"] == "human_only"
        assert (data["consensus_required"], data["gold_rate"]) == (2, 0.05)
        assert data["label_settings"] == {"3": {"color": "#aa0000"}}
        keys = {entry["label"]: entry["keys"][0] for entry in data["label_keys"]}
        assert keys == {str(d): str(d) for d in range(10)}
        membership = WorkflowMembership.objects.get(workflow__slug="pcb", user=creator)
        assert (membership.can_admin, membership.can_review, membership.can_submit) == (
            True,
            True,
            False,
        )
        # The creator now manages it like any admin.
        assert session(creator).get(url("pcb", "members/")).status_code == 200

    def test_a_superuser_may_create(self, make_user: Any) -> None:
        root = make_user("root", superuser=True)
        assert session(root).post(LIST, new_workflow(), format="json").status_code == 201


# --- Changing settings ----------------------------------------------------------------------


class TestUpdate:
    def test_who_may_change_it(self, home: dict[str, Any]) -> None:
        body = {"name": "Renamed"}
        assert session(home["nobody"]).patch(url("home"), body, format="json").status_code == 404
        assert session(home["olga"]).patch(url("home"), body, format="json").status_code == 404
        assert session(home["rita"]).patch(url("home"), body, format="json").status_code == 403
        assert Workflow.objects.get(slug="home").name == "Home"

    def test_policy_and_slug_are_refused(self, home: dict[str, Any]) -> None:
        admin = session(home["ada"])
        response = admin.patch(url("home"), {"level": "full", "name": "x"}, format="json")
        assert_error(response, 400, "level", "/api/v1/workflows/home/automation/")
        assert_error(admin.patch(url("home"), {"slug": "x"}, format="json"), 400, "slug", "never")
        assert Workflow.objects.get(slug="home").name == "Home"

    def test_settings_change(self, home: dict[str, Any]) -> None:
        admin = session(home["ada"])
        body = {
            "name": "Home line",
            "instructions": "Press **1** for ok",
            "review_lease_seconds": 120,
            "skip_delay_seconds": 0,
            "max_skips": 5,
            "hidden_suggestion_rate": 0.2,
            "label_settings": {"ok": {"key": "k", "color": "#112233"}},
        }
        response = admin.patch(url("home"), body, format="json")
        assert response.status_code == 200, response.content
        workflow = Workflow.objects.get(slug="home")
        assert (workflow.name, workflow.review_lease_seconds, workflow.max_skips) == (
            "Home line",
            120,
            5,
        )
        assert response.json()["label_keys"][0] == {
            "label": "ok",
            "keys": ["k"],
            "color": "#112233",
        }
        assert_error(
            admin.patch(url("home"), {"review_lease_seconds": 10**12}, format="json"),
            400,
            "review_lease_seconds",
        )

    def test_labels_are_appended_and_an_unused_one_may_go(self, home: dict[str, Any]) -> None:
        admin = session(home["ada"])
        labels = ["ok", "scratch", "crack", "stain", "dent"]
        response = admin.patch(url("home"), {"labels": labels}, format="json")
        assert response.status_code == 200, response.content
        assert Workflow.objects.get(slug="home").labels == labels
        response = admin.patch(url("home"), {"labels": labels[:-1]}, format="json")
        assert response.status_code == 200
        reorder = ["scratch", "ok", "crack", "stain"]
        assert_error(
            admin.patch(url("home"), {"labels": reorder}, format="json"), 400, "labels", "order"
        )
        insert = ["ok", "new", "scratch", "crack", "stain"]
        assert_error(
            admin.patch(url("home"), {"labels": insert}, format="json"), 400, "labels", "append"
        )

    def test_a_label_with_a_verdict_is_never_renamed_or_removed(self, home: dict[str, Any]) -> None:
        from review.services import review_next, verdict_submit
        from tests.review.factories import case_in_review

        workflow = home["workflow"]
        case_in_review(workflow)
        assignment = review_next(workflow=workflow, reviewer=home["rita"])
        assert assignment is not None
        verdict_submit(task_id=assignment.task_id, reviewer=home["rita"], label="crack")
        admin = session(home["ada"])
        for labels in (["ok", "scratch", "stain"], ["ok", "scratch", "Crack", "stain"]):
            response = admin.patch(url("home"), {"labels": labels}, format="json")
            error = assert_error(response, 409, "labels", "'crack'", "archive")
            assert error["code"] == "label_in_use"
        assert Workflow.objects.get(slug="home").labels == ["ok", "scratch", "crack", "stain"]

    def test_no_labels_are_added_while_the_model_decides(self, home: dict[str, Any]) -> None:
        Workflow.objects.filter(slug="home").update(level="partial")
        labels = ["ok", "scratch", "crack", "stain", "dent"]
        response = session(home["ada"]).patch(url("home"), {"labels": labels}, format="json")
        assert assert_error(response, 409, "labels", "assistance")["code"] == "level_too_high"


# --- Archiving -------------------------------------------------------------------------------


class TestArchive:
    def test_only_admins_archive(self, home: dict[str, Any]) -> None:
        assert session(home["rita"]).post(url("home", "archive/")).status_code == 403
        assert session(home["olga"]).post(url("home", "archive/")).status_code == 404
        assert Workflow.objects.get(slug="home").archived_at is None

    def test_an_archived_workflow_refuses_cases_and_leaves_the_list(
        self, home: dict[str, Any], member: Any, make_user: Any, client_for: Any
    ) -> None:
        camera = make_user("camera")
        member(camera, home["workflow"], submit=True)
        line = client_for(camera)
        admin = session(home["ada"])
        assert post_case(line, "home", "before").status_code == 201
        response = admin.post(url("home", "archive/"))
        assert response.status_code == 200 and response.json()["archived_at"]
        assert admin.post(url("home", "archive/")).status_code == 200  # idempotent

        refused = post_case(line, "home", "after")
        assert assert_error(refused, 409, None, "archived")["code"] == "archived"
        assert post_case(line, "home", "before").status_code == 200  # a repeat still answers
        assert Case.objects.filter(workflow__slug="home").count() == 1
        assert [w["slug"] for w in admin.get(LIST).json()] == []
        assert [w["slug"] for w in admin.get(LIST + "?archived=include").json()] == ["home"]
        assert [w["slug"] for w in admin.get(LIST + "?archived=only").json()] == ["home"]
        assert_error(admin.get(LIST + "?archived=maybe"), 400, "archived")
        assert admin.get(url("home")).status_code == 200  # still reachable by its admins
        token = admin.post(url("home", "tokens/"), {"name": "late"}, format="json")
        assert_error(token, 409, None, "archived")

        assert admin.post(url("home", "unarchive/")).json()["archived_at"] is None
        assert post_case(line, "home", "after").status_code == 201


# --- Members --------------------------------------------------------------------------------


class TestMembers:
    def test_who_may_list_and_add(self, home: dict[str, Any]) -> None:
        body = {"username": "nobody", "role": "reviewer"}
        for user, status in ((home["nobody"], 404), (home["olga"], 404), (home["rita"], 403)):
            assert session(user).get(url("home", "members/")).status_code == status
            assert (
                session(user).post(url("home", "members/"), body, format="json").status_code
                == status
            )
        assert not WorkflowMembership.objects.filter(user=home["nobody"]).exists()

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"username": "x", "role": "owner"}, "role"),
            ({"username": "has space", "role": "reviewer"}, "username"),
            ({"username": "", "role": "reviewer"}, "username"),
            ({"username": "x" * 151, "role": "reviewer"}, "username"),
            ({"username": "x", "role": "reviewer", "email": "not-mail"}, "email"),
            ({"role": "reviewer"}, "username"),
            ({"username": "x", "role": "reviewer", "can_admin": True}, "can_admin"),
        ],
    )
    def test_bad_input(self, home: dict[str, Any], body: dict[str, Any], field: str) -> None:
        response = session(home["ada"]).post(url("home", "members/"), body, format="json")
        assert_error(response, 400, field)
        assert not get_user_model().objects.filter(username="x").exists()

    def test_adding_an_existing_user(self, home: dict[str, Any]) -> None:
        admin = session(home["ada"])
        body = {"username": "nobody", "role": "reviewer"}
        response = admin.post(url("home", "members/"), body, format="json")
        assert response.status_code == 201, response.content
        data = response.json()
        assert (data["role"], data["created_account"], data["set_password_url"]) == (
            "reviewer",
            False,
            None,
        )
        again = admin.post(url("home", "members/"), body, format="json")
        assert assert_error(again, 409, "username", "already")["code"] == "already_member"
        names = [m["username"] for m in admin.get(url("home", "members/")).json()]
        assert names == ["ada", "nobody", "rita"]

    def test_inviting_a_new_person_gives_a_one_time_link(self, home: dict[str, Any]) -> None:
        admin = session(home["ada"])
        body = {"username": "nina", "role": "reviewer", "email": "nina@example.com"}
        response = admin.post(url("home", "members/"), body, format="json")
        assert response.status_code == 201, response.content
        data = response.json()
        assert data["created_account"] and data["emailed"] and not data["password_set"]
        link = data["set_password_url"]
        assert link.startswith("http://testserver/account/set-password/")
        assert len(mail.outbox) == 1 and link in mail.outbox[0].body
        nina = get_user_model().objects.get(username="nina")
        assert not nina.has_usable_password()
        # The link is in that response only.
        assert "set-password" not in admin.get(url("home", "members/")).content.decode()

        browser = Client()
        page = browser.get(link, follow=True)
        assert b"Choose your password" in page.content and b"new_password1" in page.content
        form_url = page.redirect_chain[-1][0]
        done = browser.post(
            form_url, {"new_password1": "ample-Harbor-91", "new_password2": "ample-Harbor-91"}
        )
        assert done.status_code == 302
        assert Client().login(username="nina", password="ample-Harbor-91")
        reused = Client().get(link, follow=True)
        assert b"does not work" in reused.content

    def test_no_email_without_an_address(self, home: dict[str, Any]) -> None:
        body = {"username": "nils", "role": "admin"}
        data = session(home["ada"]).post(url("home", "members/"), body, format="json").json()
        assert data["set_password_url"] and not data["emailed"] and data["role"] == "admin"
        assert not mail.outbox

    def test_roles_and_the_last_admin(self, home: dict[str, Any]) -> None:
        admin = session(home["ada"])
        demote = admin.patch(url("home", "members/ada/"), {"role": "reviewer"}, format="json")
        assert assert_error(demote, 409, "role", "last admin")["code"] == "last_admin"
        assert_error(admin.delete(url("home", "members/ada/")), 409, "username", "last admin")
        assert_error(
            admin.patch(url("home", "members/rita/"), {"role": "boss"}, format="json"), 400, "role"
        )
        assert admin.delete(url("home", "members/olga/")).status_code == 404  # not a member here
        assert admin.delete(url("home", "members/ghost/")).status_code == 404

        promoted = admin.patch(url("home", "members/rita/"), {"role": "admin"}, format="json")
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
        assert (
            admin.patch(url("home", "members/ada/"), {"role": "reviewer"}, format="json").json()[
                "role"
            ]
            == "reviewer"
        )
        rita = session(home["rita"])
        assert rita.delete(url("home", "members/ada/")).status_code == 204
        assert not WorkflowMembership.objects.filter(user=home["ada"]).exists()
        assert session(home["ada"]).get(url("home")).status_code == 404

    def test_reviewers_cannot_change_members(self, home: dict[str, Any]) -> None:
        rita = session(home["rita"])
        assert (
            rita.patch(url("home", "members/rita/"), {"role": "admin"}, format="json").status_code
            == 403
        )
        assert rita.delete(url("home", "members/ada/")).status_code == 403
        assert session(home["olga"]).delete(url("home", "members/rita/")).status_code == 404


# --- Tokens ---------------------------------------------------------------------------------


class TestTokens:
    def test_who_may_manage_tokens(self, home: dict[str, Any]) -> None:
        for user, status in ((home["nobody"], 404), (home["olga"], 404), (home["rita"], 403)):
            client = session(user)
            assert client.get(url("home", "tokens/")).status_code == status
            response = client.post(url("home", "tokens/"), {"name": "x"}, format="json")
            assert response.status_code == status

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"name": " "}, "name"),
            ({}, "name"),
            ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
            ({"name": "x", "expires_in_days": "10"}, "expires_in_days"),
            ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
            ({"name": "x", "expires_at": "soon"}, "expires_at"),
            ({"name": "x", "expires_at": "2099-01-01T00:00:00Z", "expires_in_days": 3}, None),
            ({"name": "x", "user": "ada"}, "user"),
        ],
    )
    def test_bad_input(self, home: dict[str, Any], body: dict[str, Any], field: str | None) -> None:
        response = session(home["ada"]).post(url("home", "tokens/"), body, format="json")
        assert_error(response, 400, field)
        assert session(home["ada"]).get(url("home", "tokens/")).json() == []

    def test_the_key_is_shown_once_and_submits_to_this_workflow_only(
        self, home: dict[str, Any]
    ) -> None:
        admin = session(home["ada"])
        response = admin.post(
            url("home", "tokens/"), {"name": "line 3", "expires_in_days": 30}, format="json"
        )
        assert response.status_code == 201, response.content
        created = response.json()
        key = created["key"]
        assert (
            created["name"] == "line 3" and created["expires_at"] and created["created_by"] == "ada"
        )
        listed = admin.get(url("home", "tokens/"))
        assert key not in listed.content.decode() and "key" not in listed.json()[0]
        assert listed.json()[0]["prefix"] == key[:8]
        # Not a member to manage: the token's account is listed with the tokens only.
        assert "upstream" not in admin.get(url("home", "members/")).content.decode()

        line = APIClient()
        line.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert post_case(line, "home").status_code == 201
        case = Case.objects.get(external_id="part-1")
        assert case.submitted_by.workflow_token.token_id == created["id"]
        assert post_case(line, "other").status_code == 404
        assert line.get(url("home", "members/")).status_code == 403
        assert line.patch(url("home"), {"name": "x"}, format="json").status_code == 403
        assert [w["slug"] for w in line.get(LIST).json()] == ["home"]

        assert (
            session(home["olga"]).delete(url("other", f"tokens/{created['id']}/")).status_code
            == 404
        )
        assert admin.delete(url("home", "tokens/abc/")).status_code == 400
        assert admin.delete(url("home", "tokens/999999/")).status_code == 404
        assert admin.delete(url("home", f"tokens/{created['id']}/")).status_code == 204
        assert admin.delete(url("home", f"tokens/{created['id']}/")).status_code == 204
        assert post_case(line, "home", "part-2").status_code == 401
        row = admin.get(url("home", "tokens/")).json()[0]
        assert row["revoked_at"] and row["revoked_by"] == "ada"

    def test_a_token_account_cannot_be_invited_as_a_person(self, home: dict[str, Any]) -> None:
        admin = session(home["ada"])
        admin.post(url("home", "tokens/"), {"name": "line"}, format="json")
        account = get_user_model().objects.get(username__startswith="upstream~home~")
        # Its name is outside what a person's username may be, so it is refused as input.
        body = {"username": account.username, "role": "admin"}
        assert_error(admin.post(url("home", "members/"), body, format="json"), 400, "username")


# --- Management commands -------------------------------------------------------------------


def test_the_commands_go_through_the_same_service(make_user: Any) -> None:
    make_user("quinn")
    with pytest.raises(CommandError, match="may not create"):
        call_command("workflow_create", "weld", name="Weld", labels="ok,bad", admin="quinn")
    call_command("workflow_grant_creator", "quinn", stdout=io.StringIO())
    with pytest.raises(CommandError, match="between 2"):
        call_command("workflow_create", "weld", name="Weld", labels="ok", admin="quinn")
    call_command(
        "workflow_create", "weld", name="Weld", labels="ok,bad", admin="quinn", stdout=io.StringIO()
    )
    workflow = Workflow.objects.get(slug="weld")
    assert workflow.level == "human_only" and workflow.labels == ["ok", "bad"]
    assert WorkflowMembership.objects.get(workflow=workflow).user.username == "quinn"


def test_a_lost_link_is_renewed_only_for_a_pending_account_of_this_workflow_alone(
    home: dict[str, Any], member: Any
) -> None:
    admin = session(home["ada"])
    first = admin.post(
        url("home", "members/"), {"username": "nina", "role": "reviewer"}, format="json"
    )
    old_link = first.json()["set_password_url"]
    renew = url("home", "members/nina/set-password-link/")
    assert session(home["rita"]).post(renew).status_code == 403
    assert session(home["olga"]).post(renew).status_code == 404
    response = admin.post(renew)
    assert response.status_code == 200
    new_link = response.json()["set_password_url"]
    assert "/account/set-password/" in new_link
    # Either link works until a password is chosen; then neither does.
    browser = Client()
    page = browser.get(new_link, follow=True)
    browser.post(
        page.redirect_chain[-1][0],
        {"new_password1": "ample-Harbor-91", "new_password2": "ample-Harbor-91"},
    )
    assert b"does not work" in Client().get(old_link, follow=True).content
    refused = admin.post(renew)
    assert assert_error(refused, 409, "username", "in use")["code"] == "not_pending"
    # An account that another workflow uses is not this admin's to hand over.
    admin.post(url("home", "members/"), {"username": "nils", "role": "reviewer"}, format="json")
    member(get_user_model().objects.get(username="nils"), home["other"], review=True)
    assert_error(
        admin.post(url("home", "members/nils/set-password-link/")), 409, "username", "another"
    )
    assert_error(admin.post(url("home", "members/rita/set-password-link/")), 409, "username")
