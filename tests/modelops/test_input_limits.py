"""The model API under hostile ids and numbers: 4xx naming the field, never a 500.

``test_model_version_detail_for_every_role`` was a 500 on PostgreSQL for everyone (a
DISTINCT queryset combined with ``|``); CI runs it there.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelops.models import Deployment, ModelVersion, RetrainRule, TrainingRun
from tests.modelops import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(
    parts_workflow: Any,
    weights_file: Any,
    make_workflow: Any,
    make_user: Any,
    member: Any,
    client_for: Any,
) -> dict[str, Any]:
    version = factories.version_create(parts_workflow, weights_file(seed=1), factories.PART_LABELS)
    factories.deploy(parts_workflow, version, "serving")
    elsewhere = make_workflow("elsewhere", serving=False, labels=list(factories.PART_LABELS))
    factories.deploy(elsewhere, version, "shadow")
    admin, reviewer, stranger = make_user("boss"), make_user("rita"), make_user("olga")
    member(admin, parts_workflow, admin=True)
    member(reviewer, parts_workflow, review=True)
    member(stranger, make_workflow("third", serving=False), admin=True)
    other_admin = make_user("ella")
    member(other_admin, elsewhere, admin=True)
    return {
        "version": version,
        "admin": client_for(admin),
        "reviewer": client_for(reviewer),
        "stranger": client_for(stranger),
        "other_admin": client_for(other_admin),
        "root": client_for(make_user("root", superuser=True)),
    }


@pytest.mark.parametrize(
    ("who", "status"),
    [("admin", 200), ("other_admin", 200), ("root", 200), ("reviewer", 403), ("stranger", 404)],
)
def test_model_version_detail_for_every_role(world: dict, who: str, status: int) -> None:
    response = world[who].get(f"/api/v1/model-versions/{world['version'].pk}/")
    assert response.status_code == status, response.content
    if status == 200:
        assert response.json()["tag"] == world["version"].tag


@pytest.mark.parametrize(
    "raw", ["99999999999999999999999", str(2**63), "0", "-1", "abc", "%C2%B2", "1.5"]
)
@pytest.mark.parametrize(
    "path", ["model-versions/{}/", "training-runs/{}/", "training-runs/{}/cancel/"]
)
def test_ids_that_cannot_exist_are_not_found(world: dict, path: str, raw: str) -> None:
    client = world["admin"]
    url = "/api/v1/" + path.format(raw)
    response = client.post(url) if url.endswith("cancel/") else client.get(url)
    assert response.status_code == 404, response.content


def message_of(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.content
    return response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (2**31, "every_n_labels: Ensure this value is less than or equal to 2147483647"),
        (0, "every_n_labels: Ensure this value is greater than or equal to 10"),
        (2**64, "body: the integer 18446744073709551616 is out of range"),
    ],
)
def test_retrain_rule_every_n_labels_beyond_the_column(world: dict, value: int, words: str) -> None:
    response = world["admin"].put(
        "/api/v1/workflows/parts/retrain-rule/",
        {"enabled": True, "every_n_labels": value},
        format="json",
    )
    assert words in message_of(response)
    assert not RetrainRule.objects.filter(every_n_labels__isnull=False).exists()


def test_retrain_rule_at_the_column_limit(world: dict) -> None:
    response = world["admin"].put(
        "/api/v1/workflows/parts/retrain-rule/",
        {"enabled": True, "every_n_labels": 2**31 - 1},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["every_n_labels"] == 2**31 - 1


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("baseline=" + "9" * 25, "baseline: must be a whole number"),
        ("baseline=99999999999999999999", "baseline: must be between 1 and"),
        ("baseline=abc", "baseline: must be a whole number"),
        ("challenger=-3", "challenger: must be between 1 and"),
    ],
)
def test_comparison_ids(world: dict, query: str, words: str) -> None:
    response = world["admin"].get(f"/api/v1/workflows/parts/model-comparison/?{query}")
    assert words in message_of(response)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"batch_size": 10**9}, "batch_size"),
        ({"input_size": 2**40}, "input_size"),
        ({"epochs": 2**31}, "epochs"),
        ({"lr": 1e300}, "lr"),
        ({"seed": 2**63}, "out of range"),
    ],
)
def test_training_run_numbers(world: dict, body: dict, words: str) -> None:
    response = world["admin"].post("/api/v1/workflows/parts/training-runs/", body, format="json")
    assert words in message_of(response)
    assert TrainingRun.objects.count() == 0


@pytest.mark.parametrize("model_version", [0, 2**63 - 1 + 1, -1])
def test_deployment_model_version_beyond_an_id(world: dict, model_version: int) -> None:
    response = world["admin"].post(
        "/api/v1/workflows/parts/deployments/",
        {"model_version": model_version, "role": "canary", "reason": "try"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert not Deployment.objects.filter(role="canary").exists()


def test_registration_input_size_beyond_the_column(world: dict, weights_file: Any) -> None:
    with weights_file(seed=3).open("rb") as handle:
        response = world["admin"].post(
            "/api/v1/workflows/parts/model-versions/",
            {
                "weights": handle,
                "name": "big",
                "architecture": factories.TINY_ARCHITECTURE,
                "input_size": str(2**40),
            },
            format="multipart",
        )
    assert "input_size" in message_of(response)
    assert not ModelVersion.objects.filter(name="big").exists()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("mean", "[NaN, 0.5, 0.5]", "NaN is not a JSON number"),
        ("mean", "nan, 0.5, 0.5", "three finite numbers"),
        ("std", "[1e400, 1, 1]", "out of range"),
        ("arch_kwargs", '{"a": "\\u0000"}', "NUL character"),
        ("arch_kwargs", '{"a":' * 100 + "1" + "}" * 100, "nested deeper than 32 levels"),
        ("training", '{"note": "\\ud800"}', "lone surrogate"),
        ("labels", '["a\\u0000"]', "NUL character"),
    ],
)
def test_registration_json_fields_are_strict(
    world: dict, weights_file: Any, field: str, value: str, words: str
) -> None:
    with weights_file(seed=4).open("rb") as handle:
        response = world["admin"].post(
            "/api/v1/workflows/parts/model-versions/",
            {
                "weights": handle,
                "name": "strict",
                "architecture": factories.TINY_ARCHITECTURE,
                field: value,
            },
            format="multipart",
        )
    assert words in message_of(response)
    assert not ModelVersion.objects.filter(name="strict").exists()


def test_services_refuse_numbers_beyond_the_columns(world: dict, make_user: Any) -> None:
    """The model page's forms call these services directly: they check the ranges too."""
    from kernel.errors import InvalidInput
    from modelops.retraining import TrainingRequest, retrain_rule_update, training_run_start

    workflow = world["version"].workflow
    user = make_user("page-admin")
    with pytest.raises(InvalidInput, match="every_n_labels: from 10 to 2147483647"):
        retrain_rule_update(
            workflow=workflow,
            actor=user,
            enabled=True,
            every_n_labels=2**40,
            after_step_down=False,
        )
    with pytest.raises(InvalidInput, match="seed: from 0 to"):
        training_run_start(workflow=workflow, actor=user, request=TrainingRequest(seed=10**30))
    assert TrainingRun.objects.count() == 0
    assert not RetrainRule.objects.filter(every_n_labels__isnull=False).exists()
