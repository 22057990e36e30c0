"""The Django admin admits active superusers only (loopgate.admin_site).

A staff flag with every model permission gets no page of the admin: not the index, not
a list, an add form or a change form of any registered model, and not the login.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only"


@pytest.fixture
def people(make_user: Any, make_workflow: Any, member: Any) -> dict[str, Any]:
    """Workflow A and B; B's admin is staff holding every model permission (the old demo)."""
    workflow_a = make_workflow("line-a", serving=False)
    workflow_b = make_workflow("line-b", serving=False)
    staff = make_user("boss-b")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.all())
    member(staff, workflow_b, admin=True)
    return {
        "staff": staff,
        "root": make_user("root", superuser=True),
        "a": workflow_a,
        "b": workflow_b,
    }


def registered_pages() -> list[tuple[str, str]]:
    """(model label, URL) for the list, add and change form of every registered model."""
    pages = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages.append((model._meta.label, reverse("admin:{}_{}_changelist".format(*info))))
        pages.append((model._meta.label, reverse("admin:{}_{}_add".format(*info))))
        obj = model._default_manager.first()
        pk = obj.pk if obj is not None else 1
        pages.append((model._meta.label, reverse("admin:{}_{}_change".format(*info), args=[pk])))
    return pages


def test_every_registered_model_is_closed_to_staff_who_are_not_superusers(
    people: dict[str, Any],
) -> None:
    client = Client()
    client.force_login(people["staff"])
    pages = [("index", "/admin/"), *registered_pages()]
    pages.append(("policy", reverse("admin:workflows_workflow_automation", args=[people["a"].pk])))
    assert len(pages) > 40
    for label, page in pages:
        response = client.get(page)
        assert response.status_code == 302, (label, page, response.status_code)
        assert response["Location"].startswith("/admin/login/"), (label, page)


def test_staff_cannot_change_another_workflow_through_the_admin(people: dict[str, Any]) -> None:
    """The reported back door: B's admin renamed A and raised its audit rate."""
    client = Client()
    client.force_login(people["staff"])
    workflow_a = people["a"]
    change = reverse("admin:workflows_workflow_change", args=[workflow_a.pk])
    response = client.post(change, {"name": "renamed", "audit_rate": 0.9, "labels": "[]"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    policy = reverse("admin:workflows_workflow_automation", args=[workflow_a.pk])
    response = client.post(policy, {"level": "full", "reason": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    workflow_a.refresh_from_db()
    assert workflow_a.name == "Line-A" and workflow_a.audit_rate == 0.0


def test_the_login_form_refuses_staff_and_admits_superusers(people: dict[str, Any]) -> None:
    client = Client()
    refused = client.post(
        "/admin/login/?next=/admin/", {"username": "boss-b", "password": PASSWORD}
    )
    assert refused.status_code == 200
    assert "The Django admin is for superusers" in refused.content.decode()
    assert client.get("/admin/").status_code == 302
    admitted = Client().post(
        "/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD}
    )
    assert admitted.status_code == 302 and admitted["Location"] == "/admin/"


def test_an_inactive_superuser_is_refused(people: dict[str, Any]) -> None:
    root = people["root"]
    root.is_active = False
    root.save()
    client = Client()
    client.force_login(root)
    assert client.get("/admin/").status_code == 302


def test_a_superuser_sees_every_registered_model(people: dict[str, Any]) -> None:
    client = Client()
    client.force_login(people["root"])
    assert client.get("/admin/").status_code == 200
    for label, page in registered_pages():
        if page.endswith("/change/") and not label.startswith("workflows.Workflow"):
            continue  # only the workflows exist as rows here
        response = client.get(page)
        if page.endswith("/add/"):
            assert response.status_code in (200, 403), (label, page)
        else:
            assert response.status_code == 200, (label, page, response.status_code)


def test_bootstrap_demo_makes_no_staff_and_clears_an_old_demo_admins_flag(
    capsys: Any, make_user: Any
) -> None:
    old_admin = make_user("admin")
    old_admin.is_staff = True
    old_admin.save()
    old_admin.user_permissions.set(Permission.objects.filter(codename="change_workflow"))
    call_command("bootstrap_demo", "--json")
    demo = json.loads(capsys.readouterr().out)
    from django.contrib.auth import get_user_model

    for username in ("admin", "reviewer", "line-camera-1"):
        user = get_user_model().objects.get(username=username)
        assert not user.is_staff and not user.is_superuser, username
        # The workflow admin may create workflows from the product, and nothing else.
        codenames = set(user.user_permissions.values_list("codename", flat=True))
        assert codenames == ({"add_workflow"} if username == "admin" else set()), username
    logged_in = Client()
    assert logged_in.login(username="admin", password=demo["admin"]["password"])
    assert logged_in.get("/admin/").status_code == 302
    refused = Client().post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": demo["admin"]["password"]},
    )
    assert refused.status_code == 200, "the demo admin cannot log in to the Django admin"
    product = Client()
    assert product.login(username="admin", password=demo["admin"]["password"])
    assert product.get(f"/workflows/{demo['workflow']}/automation/").status_code == 200
