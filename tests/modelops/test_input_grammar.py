"""One input grammar per operation: the models page and the API read the same input the
same way, so the same bad input is refused with the same message on both paths."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from modelops.models import ModelVersion, RetrainRule, TrainingRun
from tests.modelops import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_page(people: dict[str, Any], client: Any) -> Any:
    client.force_login(people["users"]["admin"])
    return client


def page_message(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    found = [str(message) for message in response.context["messages"]]
    assert len(found) == 1, found
    return found[0]


def api_message(response: Any) -> str:
    assert response.status_code == 400, response.content
    return str(response.json()["error"]["message"])


def weights(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    handle = io.BytesIO(path.read_bytes())
    handle.name = path.name
    return {"weights": handle}


BAD_REGISTRATIONS = [
    ({"name": "tiny", "architecture": "squeezenet1_1"}, False),
    ({"architecture": "squeezenet1_1"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "input_size": "big"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "input_size": "8"}, True),
    ({"name": "tiny", "architecture": "no-such-net", "input_size": "32"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "labels": "ok"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "mean": "0.5 0.5"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "std": "[1, 1, 0]"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "mean": "[NaN, 1, 1]"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "arch_kwargs": "[1]"}, True),
    ({"name": "tiny", "architecture": "squeezenet1_1", "arch_kwargs": "{oops"}, True),
]


@pytest.mark.parametrize(("fields", "with_weights"), BAD_REGISTRATIONS)
def test_registration_refused_alike_on_page_and_api(
    fields: dict[str, str],
    with_weights: bool,
    people: dict[str, Any],
    admin_page: Any,
    weights_file: Any,
) -> None:
    path = weights_file() if with_weights else None
    page = admin_page.post("/models/parts/register/", {**fields, **weights(path)}, follow=True)
    api = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/", {**fields, **weights(path)}, format="multipart"
    )
    assert page_message(page) == api_message(api)
    assert ModelVersion.objects.count() == 0


def test_registration_accepts_the_same_spellings_on_both_paths(
    people: dict[str, Any], admin_page: Any, weights_file: Any
) -> None:
    fields = {
        "name": "tiny",
        "architecture": "squeezenet1_1",
        "input_size": "32",
        "labels": ", ".join(factories.PART_LABELS),
        "mean": "0.5 0.5 0.5",
        "std": "0.25, 0.25, 0.25",
    }
    page = admin_page.post(
        "/models/parts/register/", {**fields, **weights(weights_file(seed=1))}, follow=True
    )
    assert page_message(page).startswith("Registered tiny:v1")
    api = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        {**fields, **weights(weights_file(seed=2))},
        format="multipart",
    )
    assert api.status_code == 201, api.content
    first, second = ModelVersion.objects.order_by("pk")
    for version in (first, second):
        assert list(version.labels) == list(factories.PART_LABELS)
        assert [float(v) for v in version.mean] == [0.5, 0.5, 0.5]
        assert [float(v) for v in version.std] == [0.25, 0.25, 0.25]
        assert version.input_size == 32


BAD_TRAINING = [
    {"epochs": "0"},
    {"epochs": "many"},
    {"lr": "2"},
    {"batch_size": "1"},
    {"test_share": "0.9"},
    {"seed": "-1"},
    {"input_size": "8"},
]


@pytest.mark.parametrize("fields", BAD_TRAINING)
def test_training_start_refused_alike_on_page_and_api(
    fields: dict[str, str], people: dict[str, Any], admin_page: Any
) -> None:
    page = admin_page.post("/models/parts/train/", fields, follow=True)
    api = people["admin"].post("/api/v1/workflows/parts/training-runs/", fields, format="json")
    assert page_message(page) == api_message(api)
    assert not TrainingRun.objects.exists()


BAD_RULES = [
    {"every_n_labels": "5"},
    {"every_n_labels": "lots"},
    {"epochs": "0"},
    {"epochs": "500"},
]


@pytest.mark.parametrize("fields", BAD_RULES)
def test_retrain_rule_refused_alike_on_page_and_api(
    fields: dict[str, str], people: dict[str, Any], admin_page: Any
) -> None:
    page = admin_page.post("/models/parts/retrain-rule/", {**fields, "enabled": "on"}, follow=True)
    api = people["admin"].put(
        "/api/v1/workflows/parts/retrain-rule/", {**fields, "enabled": True}, format="json"
    )
    assert page_message(page) == api_message(api)
    assert not RetrainRule.objects.filter(enabled=True).exists()
