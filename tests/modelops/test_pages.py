"""The models pages: who sees them, and that their forms run the same services as the API."""

from __future__ import annotations

from typing import Any

import pytest

from modelops.models import Deployment, DeploymentEvent, TrainingRun
from tests.modelops import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(people: dict[str, Any], client: Any) -> Any:
    client.force_login(people["users"]["admin"])
    return client


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_models_page_shows_deployments_versions_runs_and_log(
    admin_client: Any, two_versions: Any
) -> None:
    response = admin_client.get("/models/parts/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        "Serving",
        "tiny:v1",
        "Shadow challenger",
        "tiny:v2",
        "Promote tiny:v2 to serving",
        "Register a version",
        "Start retraining",
        "Audit log",
        "Automatic retraining",
    ):
        assert text in html, text
    home = admin_client.get("/models/")
    assert home.status_code == 200 and "Manage models" in home.content.decode()


def test_only_admins_see_the_models_pages(
    people: dict[str, Any], client: Any, two_versions: Any
) -> None:
    client.force_login(people["users"]["reviewer"])
    assert client.get("/models/parts/").status_code == 403
    assert client.post("/models/parts/rollback/", {"reason": "x"}).status_code == 403
    # The reviewer's navigation leads to the workflow's cases, never to its models page.
    assert "/models/parts/" not in client.get("/models/").content.decode()
    client.force_login(people["users"]["stranger"])
    assert client.get("/models/parts/").status_code == 404
    assert client.post("/models/parts/promote/", {"reason": "x"}).status_code == 404
    client.logout()
    assert client.get("/models/parts/").status_code == 302
    assert not DeploymentEvent.objects.exists()


def test_promote_and_roll_back_from_the_page(
    admin_client: Any, two_versions: Any, parts_workflow: Any
) -> None:
    _, shadow = two_versions
    response = admin_client.post(
        "/models/parts/promote/",
        {
            "role": "shadow",
            "model_version": shadow.pk,
            "reason": "better on paired cases",
            "confirm": "on",
        },
        follow=True,
    )
    assert "tiny:v2 is now serving" in messages_of(response)[0]
    assert "stays shadow" in messages_of(response)[0]
    response = admin_client.post(
        "/models/parts/rollback/", {"reason": "alarm", "confirm": "on"}, follow=True
    )
    assert messages_of(response) == ["Rolled back: tiny:v1 is serving again."]
    actions = list(DeploymentEvent.objects.values_list("action", "actor__username", "reason"))
    assert actions == [("rollback", "ada", "alarm"), ("promote", "ada", "better on paired cases")]
    response = admin_client.post(
        "/models/parts/rollback/", {"reason": "", "confirm": "on"}, follow=True
    )
    assert "reason" in messages_of(response)[0]


def test_promote_and_roll_back_need_the_confirmation(
    admin_client: Any, two_versions: Any, parts_workflow: Any
) -> None:
    serving, shadow = two_versions
    response = admin_client.post(
        "/models/parts/promote/",
        {"role": "shadow", "model_version": shadow.pk, "reason": "better"},
        follow=True,
    )
    assert messages_of(response) == [
        "Nothing changed: confirm that you want to promote the shadow to serving."
    ]
    response = admin_client.post(
        "/models/parts/rollback/", {"reason": "alarm", "confirm": "yes"}, follow=True
    )
    assert messages_of(response) == ["Nothing changed: confirm that you want to roll back."]
    assert not DeploymentEvent.objects.exists()
    assert Deployment.objects.get(role="serving", active=True).model_version == serving


def test_deploy_a_canary_and_start_training_from_the_page(
    admin_client: Any, parts_workflow: Any, two_versions: Any, weights_file: Any
) -> None:
    third = factories.version_create(parts_workflow, weights_file(seed=3), factories.PART_LABELS)
    response = admin_client.post(
        "/models/parts/deploy/",
        {"model_version": third.pk, "role": "canary", "traffic_share": "5", "reason": "5% canary"},
        follow=True,
    )
    assert messages_of(response) == ["tiny:v3 is now the canary for 5% of cases."]
    assert Deployment.objects.get(role="canary", active=True).traffic_share == pytest.approx(0.05)
    factories.labelled_cases_create(parts_workflow, 12)
    response = admin_client.post(
        "/models/parts/train/", {"epochs": "2", "seed": "3", "reason": "weekly"}, follow=True
    )
    assert "is queued" in messages_of(response)[0]
    run = TrainingRun.objects.get()
    assert (run.seed, run.epochs_total, run.base_version.tag) == (3, 2, "tiny:v1")
    html = admin_client.get("/models/parts/").content.decode()
    assert f'data-run-id="{run.pk}"' in html
