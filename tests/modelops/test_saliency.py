"""Saliency overlays: computed by a worker task, cached, and shown only to users who may
see the model's suggestion for the case (never to a reviewer in shadow mode)."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest
import torch
from celery import current_app
from PIL import Image

from modelops import saliency as saliency_services
from modelops.models import SaliencyMap, SaliencyStatus
from modelops.tasks import INFERENCE_QUEUE
from processing.services import cases_process
from tests.modelops import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored_case(parts_workflow: Any, two_versions: Any) -> Any:
    def make(level: str) -> Any:
        parts_workflow.level = level
        parts_workflow.save()
        case = factories.case_create(parts_workflow, factories.part_image("stain", 4, size=48))
        cases_process(case_ids=[str(case.id)])
        case.refresh_from_db()
        return case

    return make


def test_reviewer_in_assistance_gets_the_cached_overlay(
    people: dict[str, Any],
    scored_case: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: Any,
) -> None:
    case = scored_case("assistance")
    assert case.suggestion_visible
    url = f"/api/v1/cases/{case.id}/saliency/"
    with django_capture_on_commit_callbacks(execute=True) as queued:
        pending = people["reviewer"].get(url)
    assert pending.status_code == 202 and pending["Retry-After"] == "1"
    assert pending.json()["status"] == "pending"
    assert len(queued) == 1

    computed = []
    real = saliency_services.saliency_map
    monkeypatch.setattr(
        saliency_services, "saliency_map", lambda *a, **k: computed.append(1) or real(*a, **k)
    )
    for _ in range(2):
        response = people["reviewer"].get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response["X-Model-Version"] == "tiny:v1"
        overlay = Image.open(io.BytesIO(b"".join(response.streaming_content)))
        assert overlay.size == (48, 48)
    assert computed == [], "the overlay is computed once, in the worker, then cached"
    stored = SaliencyMap.objects.get()
    assert (stored.status, stored.label) == ("ready", case.deciding_prediction.label)


def test_shadow_mode_does_not_leak_to_reviewers(
    people: dict[str, Any], scored_case: Any, django_capture_on_commit_callbacks: Any
) -> None:
    case = scored_case("shadow")
    assert not case.suggestion_visible
    url = f"/api/v1/cases/{case.id}/saliency/"
    assert people["reviewer"].get(url).status_code == 404
    assert people["stranger"].get(url).status_code == 404
    assert not SaliencyMap.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert people["admin"].get(url).status_code == 202
    assert people["admin"].get(url).status_code == 200
    # An admin may ask about the shadow challenger's prediction too.
    shadow_version = case.predictions.get(role="shadow").model_version_id
    with django_capture_on_commit_callbacks(execute=True):
        response = people["admin"].get(f"{url}?model_version={shadow_version}")
    assert response.status_code == 202
    assert (
        people["admin"].get(f"{url}?model_version={shadow_version}")["X-Model-Version"] == "tiny:v2"
    )


def test_a_case_without_a_prediction_has_no_overlay(
    people: dict[str, Any], parts_workflow: Any
) -> None:
    case = factories.case_create(parts_workflow, factories.part_image("ok", 1))
    assert people["admin"].get(f"/api/v1/cases/{case.id}/saliency/").status_code == 404


def test_a_model_without_a_saliency_layer_says_why(
    people: dict[str, Any],
    parts_workflow: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    path = tmp_path / "scripted.pt"
    torch.jit.script(module).save(str(path))
    version = factories.version_create(parts_workflow, path, factories.PART_LABELS, name="ts")
    version.architecture = "torchscript"
    version.save()
    factories.deploy(parts_workflow, version, "serving")
    case = factories.case_create(parts_workflow, factories.part_image("ok", 2))
    cases_process(case_ids=[str(case.id)])
    url = f"/api/v1/cases/{case.id}/saliency/"
    with django_capture_on_commit_callbacks(execute=True):
        people["admin"].get(url)
    response = people["admin"].get(url)
    assert response.status_code == 422
    assert "no saliency for architecture 'torchscript'" in response.json()["error"]["message"]


def test_tasks_go_to_their_queues() -> None:
    router = current_app.amqp.router
    saliency = router.route({"queue": INFERENCE_QUEUE}, "modelops.tasks.saliency_compute")
    training = router.route({}, "modelops.tasks.training_run_execute")
    assert saliency["queue"].name == "inference"
    assert training["queue"].name == "training"


SALIENCY_PAIRS = list(
    itertools.product(SaliencyStatus.values, repeat=2),
)


def test_every_overlay_status_has_a_row_in_the_table() -> None:
    assert set(saliency_services.SALIENCY_TRANSITIONS) == set(SaliencyStatus.values)


@pytest.mark.parametrize(("start", "target"), SALIENCY_PAIRS)
def test_each_overlay_move_is_allowed_by_the_table_or_left_undone(
    parts_workflow: Any, weights_file: Any, start: str, target: str
) -> None:
    version = factories.version_create(parts_workflow, weights_file(seed=1), factories.PART_LABELS)
    case = factories.case_create(parts_workflow, factories.part_image("ok", 1))
    overlay = SaliencyMap.objects.create(case=case, model_version=version, label="ok", status=start)
    allowed = target in saliency_services.SALIENCY_TRANSITIONS[start]
    moved = saliency_services._saliency_move(saliency_id=overlay.pk, to_status=target, error="x")
    assert moved == allowed
    assert SaliencyMap.objects.get(pk=overlay.pk).status == (target if allowed else start)


def test_a_duplicate_computation_of_a_failed_overlay_leaves_it_failed(
    parts_workflow: Any, weights_file: Any
) -> None:
    version = factories.version_create(parts_workflow, weights_file(seed=1), factories.PART_LABELS)
    case = factories.case_create(parts_workflow, factories.part_image("ok", 1))
    overlay = SaliencyMap.objects.create(
        case=case, model_version=version, label="ok", status=SaliencyStatus.FAILED, error="gone"
    )
    saliency_services.saliency_compute(saliency_id=overlay.pk)
    overlay.refresh_from_db()
    assert (overlay.status, overlay.error) == (SaliencyStatus.FAILED, "gone")
