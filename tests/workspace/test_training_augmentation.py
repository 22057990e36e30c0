"""A workflow's default training augmentation: set on its settings page, through the API
or in the Django admin, checked by one rule on every path (the same refusal, word for
word), used by a run that names none, and the training form's starting point."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from inference.augment import NONE
from modelops.retraining import TrainingRequest, training_run_start
from tests.modelops import factories
from tests.workflows.test_workflow_admin import inline_management
from workflows.models import Workflow
from workspace.services import workflow_creator_grant

pytestmark = pytest.mark.django_db

ROTATION_REFUSED = "training_augmentation.rotation: must be from 0 to 180, got 400"
FLIPS_AND_ROTATION = {
    "hflip": True,
    "vflip": False,
    "rotation": 15.0,
    "brightness": 0.2,
    "contrast": 0.0,
    "colour": 0.05,
    "crop": 0.1,
}


@pytest.fixture
def home(make_workflow: Any, make_user: Any, member: Any) -> dict[str, Any]:
    workflow = make_workflow("home", level="human_only", serving=False)
    people = {name: make_user(name) for name in ("ada", "rita")}
    member(people["ada"], workflow, review=True, admin=True)
    member(people["rita"], workflow, review=True)
    return {"workflow": workflow, **people}


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_form(**values: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"action": "save"}
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                form[name] = "on"
        else:
            form[name] = str(value)
    return form


def stored() -> dict[str, Any]:
    return Workflow.objects.get(slug="home").training_augmentation


def test_the_page_shows_the_platform_default_then_saves_and_resets(home: dict[str, Any]) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings-training", args=["home"])
    html = client.get(page).content.decode()
    assert "the platform&#x27;s default" in html and 'name="brightness"' in html
    assert 'value="0.1"' in html  # the default's brightness jitter, where the form starts
    assert "Use the platform default" not in html  # already the default

    response = client.post(page, page_form(**FLIPS_AND_ROTATION))
    assert response.status_code == 302
    assert stored() == FLIPS_AND_ROTATION
    html = client.get(page).content.decode()
    summary = "horizontal flips, rotation ±15°, brightness ±20%, colour ±5%"
    assert summary in html and 'id="id_hflip" checked' in html

    assert client.post(page, {"action": "reset"}).status_code == 302
    assert stored() == {}


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"rotation": 400}, "rotation", ROTATION_REFUSED),
        ({"crop": 0.9}, "crop", "training_augmentation.crop: must be from 0 to 0.5"),
        ({"brightness": "lots"}, "brightness", "training_augmentation.brightness: must be a"),
    ],
)
def test_the_page_refuses_a_bad_value_on_its_input(
    home: dict[str, Any], values: dict[str, Any], field: str, says: str
) -> None:
    client = browser(home["ada"])
    page = reverse("workspace:settings-training", args=["home"])
    response = client.post(page, page_form(**values))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and errors[field][0].startswith(says), errors
    assert stored() == {}


def test_only_the_workflow_admins_change_it(home: dict[str, Any]) -> None:
    page = reverse("workspace:settings-training", args=["home"])
    assert browser(home["rita"]).post(page, page_form(hflip=True)).status_code == 403
    assert stored() == {}


def test_the_api_sets_it_and_refuses_bad_values_naming_the_field(
    home: dict[str, Any], client_for: Any
) -> None:
    api = client_for(home["ada"])
    url = "/api/v1/workflows/home/"
    shown = api.get(url).json()
    assert shown["training_augmentation"] == {}
    assert shown["training_augmentation_summary"].endswith("(the platform's default)")

    for value, says in (
        ({"rotation": 400}, ROTATION_REFUSED),
        ({"vflip": "yes"}, "training_augmentation.vflip: must be true or false"),
        ({"spin": 1}, "training_augmentation: unknown keys ['spin']"),
        ([1, 2], "training_augmentation: must be an object"),
    ):
        response = api.patch(url, {"training_augmentation": value}, format="json")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["field"] == "training_augmentation" and error["message"].startswith(says)
    assert stored() == {}

    response = api.patch(url, {"training_augmentation": {"hflip": True}}, format="json")
    assert response.status_code == 200
    assert response.json()["training_augmentation"] == {**NONE.as_dict(), "hflip": True}
    assert response.json()["training_augmentation_summary"] == "horizontal flips"
    response = api.patch(url, {"training_augmentation": None}, format="json")
    assert response.status_code == 200 and stored() == {}

    workflow_creator_grant(user=home["ada"])
    body = {"slug": "fresh", "name": "Fresh", "labels": ["a", "b"]}
    created = api.post(
        "/api/v1/workflows/", {**body, "training_augmentation": {"crop": 2}}, format="json"
    )
    assert created.status_code == 400
    assert created.json()["error"]["field"] == "training_augmentation"
    assert not Workflow.objects.filter(slug="fresh").exists()
    created = api.post(
        "/api/v1/workflows/", {**body, "training_augmentation": {"vflip": True}}, format="json"
    )
    assert created.status_code == 201
    assert Workflow.objects.get(slug="fresh").training_augmentation == {
        **NONE.as_dict(),
        "vflip": True,
    }


def test_the_admin_refuses_the_same_way_and_saves_through_the_service(
    home: dict[str, Any], make_user: Any
) -> None:
    root = browser(make_user("root", superuser=True))
    workflow = home["workflow"]
    change = reverse("admin:workflows_workflow_change", args=[workflow.pk])
    post = {
        "slug": "home",
        "name": workflow.name,
        "description": "",
        "labels": json.dumps(workflow.labels),
        "consensus_required": 1,
        "gold_rate": 0,
        "review_lease_seconds": 300,
        "skip_delay_seconds": 60,
        "max_skips": 3,
        "hidden_suggestion_rate": 0,
        "instructions": "",
        "label_settings": "{}",
        **inline_management(),
    }
    refused = root.post(change, {**post, "training_augmentation": '{"rotation": 400}'})
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert errors["training_augmentation"][0].startswith(ROTATION_REFUSED), errors
    assert stored() == {}

    saved = root.post(change, {**post, "training_augmentation": '{"vflip": true, "crop": 0.2}'})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert stored() == {**NONE.as_dict(), "vflip": True, "crop": 0.2}


def test_a_run_that_names_none_uses_it_and_the_training_form_starts_from_it(
    home: dict[str, Any],
) -> None:
    client = browser(home["ada"])
    client.post(
        reverse("workspace:settings-training", args=["home"]), page_form(**FLIPS_AND_ROTATION)
    )
    html = client.get("/models/home/").content.decode()
    assert '<input type="checkbox" name="aug_hflip" checked>' in html
    assert '<input type="checkbox" name="aug_vflip">' in html
    assert 'name="aug_rotation" type="number" step="any" min="0" max="180" value="15.0"' in html

    factories.labelled_cases_create(home["workflow"], 12)
    run = training_run_start(
        workflow=Workflow.objects.get(slug="home"),
        actor=home["ada"],
        request=TrainingRequest(architecture="resnet18"),
    )
    assert run.hyperparameters["augmentation"] == FLIPS_AND_ROTATION
    own = {**FLIPS_AND_ROTATION, "hflip": False}
    run.delete()
    run = training_run_start(
        workflow=Workflow.objects.get(slug="home"),
        actor=home["ada"],
        request=TrainingRequest(architecture="resnet18", augmentation=own),
    )
    assert run.hyperparameters["augmentation"] == own
