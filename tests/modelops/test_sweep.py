"""A hyper-parameter sweep through the one training service, from the API, the models page
and the management command: every trial's validation figure and the choice are recorded
on the version, and bad sweep input is refused naming the field."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from modelops.models import TrainingRun, TrainingStatus
from tests.modelops import factories
from tests.modelops.test_retraining import QUICK

pytestmark = pytest.mark.django_db

URL = "/api/v1/workflows/parts/training-runs/"


@pytest.fixture
def labelled(parts_workflow: Any) -> Any:
    return factories.labelled_cases_create(parts_workflow, 24)


def test_a_sweep_from_the_api_keeps_the_best_on_validation_and_records_every_trial(
    people: dict[str, Any],
    parts_workflow: Any,
    labelled: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    body = {**QUICK, "val_share": 0.25, "sweep": {"lrs": [1e-6, 0.003]}}
    with django_capture_on_commit_callbacks(execute=True):
        response = people["admin"].post(URL, body, format="json")
    assert response.status_code == 202, response.content
    run = TrainingRun.objects.get()
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    assert run.epochs_total == 4 and len(run.progress) == 4
    assert run.hyperparameters["sweep"]["trials"] == [[7, 1e-6], [7, 0.003]]

    version = run.result_version
    sweep = version.provenance["sweep"]
    assert [(t["seed"], t["lr"]) for t in sweep["trials"]] == [(7, 1e-6), (7, 0.003)]
    assert all(t["val_n"] == run.metrics["n_val"] > 0 for t in sweep["trials"])
    # The best on validation, the first of equals. Which one that is depends on the split,
    # and the split on the cases' random ids: the rule is asserted, not a trial.
    accuracies = [t["val_accuracy"] for t in sweep["trials"]]
    chosen = sweep["chosen"]
    assert chosen == accuracies.index(max(accuracies))
    chosen_lr = sweep["trials"][chosen]["lr"]
    assert (sweep["chosen_seed"], sweep["chosen_lr"]) == (7, chosen_lr)
    assert sweep["selected_on"] == "validation"
    # Trained with the chosen learning rate, measured once on the untouched test split.
    assert version.provenance["hyperparameters"]["lr"] == chosen_lr
    assert version.provenance["split_seed"] == 7
    assert version.metrics["test"]["n"] == run.metrics["n_test"]
    assert not set(run.split["test"]) & set(run.split["val"])

    shown = people["admin"].get(f"/api/v1/model-versions/{version.pk}/")
    assert shown.status_code == 200, shown.content
    assert shown.json()["provenance"]["sweep"] == sweep
    assert "best of 2 trials on the validation split" in run.events.last().reason


def test_the_models_page_shows_the_sweep_on_the_version(
    people: dict[str, Any],
    parts_workflow: Any,
    labelled: Any,
    client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(people["users"]["admin"])
    form = {
        "architecture": "resnet18",
        "from_scratch": "on",
        "input_size": "16",
        "epochs": "1",
        "batch_size": "8",
        "seed": "7",
        "test_share": "0.25",
        "val_share": "0.25",
        "sweep_seeds": "7, 8",
        "sweep_lrs": "",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/models/parts/train/", form, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages and "(a sweep of 2 trials) is queued" in messages[0], messages
    run = TrainingRun.objects.get()
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    assert run.hyperparameters["sweep"]["trials"] == [[7, 0.003], [8, 0.003]]
    version = run.result_version
    html = client.get("/models/parts/").content.decode()
    assert f'data-testid="sweep-{version.pk}"' in html
    sweep = version.provenance["sweep"]
    assert f"best of 2 on validation (seed {sweep['chosen_seed']}, lr {sweep['chosen_lr']})" in html
    assert "sweep of 2 trials" in html


@pytest.mark.parametrize(
    ("sweep", "says"),
    [
        ({"seeds": [1, 2, 3, 4], "lrs": [0.1, 0.01]}, "at most 6 trials"),
        ({"seeds": [1]}, "at least 2 trials"),
        ({"lrs": [0.01, 5]}, "sweep.lrs"),
        ({"seeds": [1, "x"]}, "sweep.seeds"),
        ({"steps": [1, 2]}, "unknown keys"),
        ("1,2", "must be an object"),
    ],
)
def test_a_bad_sweep_is_a_400_naming_the_field(
    people: dict[str, Any], parts_workflow: Any, labelled: Any, sweep: Any, says: str
) -> None:
    response = people["admin"].post(URL, {**QUICK, "sweep": sweep}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == "sweep" and says in error["message"], error
    assert not TrainingRun.objects.exists()


def test_a_sweep_needs_a_validation_split(
    people: dict[str, Any], parts_workflow: Any, labelled: Any
) -> None:
    body = {**QUICK, "val_share": 0, "sweep": {"seeds": [1, 2]}}
    response = people["admin"].post(URL, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "sweep" and "val_share" in error["message"]


def test_the_page_refuses_a_bad_sweep_with_its_name(
    people: dict[str, Any], parts_workflow: Any, labelled: Any, client: Any
) -> None:
    client.force_login(people["users"]["admin"])
    response = client.post(
        "/models/parts/train/",
        {"epochs": "1", "architecture": "resnet18", "sweep_lrs": "0.01, fast"},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages and messages[0].startswith("sweep.lrs:"), messages
    assert not TrainingRun.objects.exists()


def test_the_command_starts_a_sweep_and_refuses_a_bad_one(
    parts_workflow: Any, labelled: Any
) -> None:
    out = StringIO()
    call_command(
        "training_start",
        "--workflow=parts",
        "--architecture=resnet18",
        "--from-scratch",
        "--input-size=16",
        "--seed=3",
        "--sweep-seeds=3,4",
        "--sweep-lrs=0.003 0.001",
        "--augmentation",
        '{"hflip": false, "brightness": 0.2}',
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    run = TrainingRun.objects.get(pk=printed["id"])
    assert run.status == TrainingStatus.QUEUED and run.epochs_total == 8 * 4
    trials = [[3, 0.003], [3, 0.001], [4, 0.003], [4, 0.001]]
    assert run.hyperparameters["sweep"]["trials"] == trials
    assert run.hyperparameters["augmentation"]["brightness"] == 0.2
    run.delete()
    with pytest.raises(CommandError, match=r"sweep: at most 6 trials"):
        call_command(
            "training_start",
            "--workflow=parts",
            "--architecture=resnet18",
            "--sweep-seeds=1,2,3,4",
            "--sweep-lrs=0.1,0.01",
        )
    assert not TrainingRun.objects.exists()
