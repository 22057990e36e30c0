"""Registering model versions: good files pass the sandboxed load check, bad ones are
refused with the reason and leave nothing stored, a pickle that would run code is
refused without running it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

from inference.loader import sha256_of
from inference.model_check import check_model_file
from modelops.models import Deployment, DeploymentEvent, ModelVersion
from tests.modelops import factories

pytestmark = pytest.mark.django_db

FOUR_LABELS = ("ok", "scratch", "crack", "stain")


def upload(path: Path, **fields: Any) -> dict[str, Any]:
    handle = io.BytesIO(path.read_bytes())
    handle.name = path.name
    body: dict[str, Any] = {"weights": handle, "name": "tiny", "architecture": "squeezenet1_1"}
    body["input_size"] = 32
    body.update(fields)
    return body


def assert_nothing_stored(settings: Any) -> None:
    assert ModelVersion.objects.count() == 0
    assert not DeploymentEvent.objects.exists()
    assert factories.stored_files(settings.MEDIA_ROOT, "models") == []


class Evil:
    """Unpickling this would create the marker file: the attack a weights file can carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_good_state_dict_is_checked_stored_and_audited(
    people: dict[str, Any], weights_file: Any, settings: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", "do-not-leak")
    import inference.model_check as model_check

    child: dict[str, Any] = {}
    real_run = model_check.subprocess.run

    def spy(*args: Any, **kwargs: Any) -> Any:
        child.update(kwargs)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(model_check.subprocess, "run", spy)
    path = weights_file()
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(path, labels=json.dumps(["stain", "ok"]), note="trained on line 1, May"),
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tag"] == "tiny:v1"
    assert body["sha256"] == sha256_of(path)
    assert body["labels"] == ["stain", "ok"]
    assert body["source"] == "api"
    provenance = body["provenance"]
    assert provenance["registered_by"] == "ada"
    assert provenance["original_filename"] == path.name
    assert provenance["note"] == "trained on line 1, May"
    assert provenance["load_check"]["ok"] is True
    assert provenance["load_check"]["output_shape"] == [1, 2]
    version = ModelVersion.objects.get()
    assert sha256_of(version.weights.path) == version.sha256
    event = DeploymentEvent.objects.get()
    assert (event.action, event.to_version, event.actor.username) == ("register", version, "ada")
    listed = people["admin"].get("/api/v1/workflows/parts/model-versions/").json()
    assert [v["tag"] for v in listed] == ["tiny:v1"]
    # The check ran in a child with a bare environment: no secrets to read.
    assert "DJANGO_SECRET_KEY" not in child["env"]
    assert set(child["env"]) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "CUDA_VISIBLE_DEVICES",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE",
    }
    assert child["timeout"] > 0


def test_label_set_must_equal_the_workflows(
    people: dict[str, Any], weights_file: Any, settings: Any
) -> None:
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(weights_file(), labels=json.dumps(["ok", "stain", "crack"])),
        format="multipart",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "labels"
    assert "3 labels" in error["message"] and "2 labels" in error["message"]
    assert "not in the workflow ['crack']" in error["message"]
    assert_nothing_stored(settings)


def test_wrong_label_count_for_the_weights_is_refused(
    people: dict[str, Any], weights_file: Any, settings: Any, make_workflow: Any, member: Any
) -> None:
    """Weights with four outputs described as the workflow's two labels: refused by the check."""
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(weights_file(FOUR_LABELS)),
        format="multipart",
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "refused by the load check" in message
    assert "2 labels" in message and "size mismatch" in message
    assert_nothing_stored(settings)


def test_corrupt_file_is_refused(people: dict[str, Any], tmp_path: Path, settings: Any) -> None:
    good = factories.tiny_weights(tmp_path / "good.pt", factories.PART_LABELS)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/", upload(truncated), format="multipart"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "model_refused" and error["field"] == "weights"
    assert "truncated.pt" in error["message"]
    assert str(tmp_path) not in error["message"]
    assert_nothing_stored(settings)


def test_malicious_pickle_is_refused_without_running(
    people: dict[str, Any], tmp_path: Path, settings: Any
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"features.0.weight": Evil(marker)}, evil)
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/", upload(evil), format="multipart"
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "safe loading" in message and "GLOBAL" in message
    assert not marker.exists(), "unpickling ran the payload"
    assert_nothing_stored(settings)


def test_torchscript_with_wrong_output_shape_is_refused(
    people: dict[str, Any], tmp_path: Path, settings: Any
) -> None:
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    )
    path = tmp_path / "scripted.pt"
    torch.jit.script(module).save(str(path))
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(path, architecture="torchscript"),
        format="multipart",
    )
    assert response.status_code == 400
    assert "outputs shape (1, 3), expected (1, 2)" in response.json()["error"]["message"]
    assert_nothing_stored(settings)


def test_unknown_architecture_and_bad_normalisation_are_refused(
    people: dict[str, Any], weights_file: Any, settings: Any
) -> None:
    client = people["admin"]
    url = "/api/v1/workflows/parts/model-versions/"
    path = weights_file()
    response = client.post(url, upload(path, architecture="vgg_custom"), format="multipart")
    assert response.status_code == 400 and "vgg_custom" in response.json()["error"]["message"]
    response = client.post(url, upload(path, std=json.dumps([0.2, 0, 0.2])), format="multipart")
    assert response.status_code == 400 and response.json()["error"]["field"] == "std"
    response = client.post(url, upload(path, input_size=4), format="multipart")
    assert response.status_code == 400 and response.json()["error"]["field"] == "input_size"
    assert_nothing_stored(settings)


def test_only_workflow_admins_register(
    people: dict[str, Any], weights_file: Any, settings: Any
) -> None:
    path = weights_file()
    url = "/api/v1/workflows/parts/model-versions/"
    assert people["reviewer"].post(url, upload(path), format="multipart").status_code == 403
    assert people["submitter"].post(url, upload(path), format="multipart").status_code == 403
    assert people["stranger"].post(url, upload(path), format="multipart").status_code == 404
    assert people["stranger"].get(url).status_code == 404
    assert_nothing_stored(settings)


def test_management_command_registers_and_deploys(
    parts_workflow: Any, weights_file: Any, capsys: Any, make_user: Any
) -> None:
    make_user("ops")
    path = weights_file()
    call_command(
        "register_model",
        "--workflow",
        "parts",
        "--name",
        "tiny",
        "--architecture",
        "squeezenet1_1",
        "--input-size",
        "32",
        "--weights",
        str(path),
        "--user",
        "ops",
        "--deploy-as",
        "serving",
        "--reason",
        "first model",
        "--training",
        '{"dataset": "line-1 May", "epochs": 12}',
    )
    body = json.loads(capsys.readouterr().out)
    assert body["tag"] == "tiny:v1" and body["source"] == "command"
    assert body["provenance"]["training"] == {"dataset": "line-1 May", "epochs": 12}
    deployment = Deployment.objects.get(active=True)
    assert (deployment.role, deployment.model_version.tag) == ("serving", "tiny:v1")
    with pytest.raises(CommandError, match="missing"):
        call_command(
            "register_model",
            "--workflow",
            "parts",
            "--name",
            "tiny",
            "--architecture",
            "squeezenet1_1",
            "--weights",
            str(path),
            "--labels",
            "ok",
        )


def test_the_check_times_out_instead_of_hanging(tmp_path: Path) -> None:
    path = factories.tiny_weights(tmp_path / "w.pt", factories.PART_LABELS)
    result = check_model_file(
        factories.tiny_spec(factories.PART_LABELS), path, timeout_seconds=0.05
    )
    assert not result.ok
    assert "did not finish" in result.error
