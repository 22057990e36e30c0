"""Retraining from reviewer labels: a run on a small labelled set beats the untrained
baseline on its held-out split, records its seed, split and hyper-parameters, starts in
shadow, and a failed or cancelled run leaves serving untouched."""

from __future__ import annotations

from typing import Any

import pytest

from automation.models import LevelChange
from inference.retrain import retrain, stratified_split
from modelops import retraining
from modelops.models import (
    Deployment,
    ModelVersion,
    RetrainRule,
    TrainingRun,
    TrainingStatus,
)
from tests.modelops import factories
from workflows.models import CaseStatus

pytestmark = pytest.mark.django_db

# ResNet-18 at 16 px learns the blob in two epochs; smaller networks need many more.
QUICK = {
    "from_scratch": True,
    "architecture": "resnet18",
    "input_size": 16,
    "epochs": 2,
    "batch_size": 8,
    "lr": 0.003,
    "seed": 7,
    "test_share": 0.25,
    "val_share": 0.1,
}


def active_roles(workflow: Any) -> dict[str, str]:
    return {
        d.role: d.model_version.tag
        for d in Deployment.objects.filter(workflow=workflow, active=True).select_related(
            "model_version"
        )
    }


@pytest.fixture
def serving(parts_workflow: Any, weights_file: Any) -> Any:
    version = factories.version_create(parts_workflow, weights_file(seed=1), factories.PART_LABELS)
    factories.deploy(parts_workflow, version, "serving")
    return version


def test_a_run_beats_the_untrained_baseline_and_starts_in_shadow(
    people: dict[str, Any],
    parts_workflow: Any,
    serving: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    cases = factories.labelled_cases_create(parts_workflow, 24)
    gold = factories.case_create(
        parts_workflow, factories.part_image("stain", 999), human_label="stain", is_gold=True
    )
    unlabelled = factories.case_create(parts_workflow, factories.part_image("ok", 998))
    with django_capture_on_commit_callbacks(execute=True):
        response = people["admin"].post(
            "/api/v1/workflows/parts/training-runs/",
            {**QUICK, "reason": "first retrain"},
            format="json",
        )
    assert response.status_code == 202, response.content
    run = TrainingRun.objects.get()
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    assert [(e.from_status, e.to_status) for e in run.events.all()] == [
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    body = people["admin"].get(f"/api/v1/training-runs/{run.pk}/?include=split").json()
    assert [p["epoch"] for p in body["progress"]] == [1, 2]
    assert all(p["loss"] > 0 and p["val_accuracy"] is not None for p in body["progress"])

    split = body["split"]
    train, val, test = set(split["train"]), set(split["val"]), set(split["test"])
    assert not (train & test) and not (train & val) and not (val & test)
    assert train | val | test == {str(c.id) for c in cases}
    assert str(gold.id) not in train | val | test and str(unlabelled.id) not in train | val | test
    assert len(test) == 12 and split["seed"] == 7

    metrics = run.metrics
    assert metrics["baseline"] == "untrained"
    assert metrics["test"]["n"] == metrics["baseline_test"]["n"] == 12
    assert metrics["test_accuracy"] > metrics["baseline_test"]["accuracy"]
    assert metrics["test_accuracy"] >= 0.75

    version = run.result_version
    assert version.source == "training"
    assert version.provenance["training_run"] == run.pk
    assert version.provenance["seed"] == 7
    assert version.provenance["split"]["n_test"] == 12
    assert version.provenance["hyperparameters"]["epochs"] == 2
    assert version.provenance["hyperparameters"]["device"] == "cpu"
    assert version.metrics["test_accuracy"] == metrics["test_accuracy"]
    assert active_roles(parts_workflow) == {"serving": "tiny:v1", "shadow": version.tag}
    assert parts_workflow.deployment_events.filter(action="deploy", to_version=version).exists()


def test_the_same_inputs_give_the_same_metrics_on_the_cpu() -> None:
    images = [
        (factories.part_image(label, 50 + 2 * i + k), label)
        for i in range(12)
        for k, label in enumerate(factories.PART_LABELS)
    ]
    split = stratified_split(
        [(f"case-{i}", label) for i, (_, label) in enumerate(images)],
        test_share=0.25,
        val_share=0.0,
        seed=3,
    )
    by_key = {f"case-{i}": pair for i, pair in enumerate(images)}

    def part(keys: tuple[str, ...]) -> tuple[list[Any], list[str]]:
        return [by_key[k][0] for k in keys], [by_key[k][1] for k in keys]

    def run(path: Any) -> Any:
        return retrain(
            factories.tiny_spec(factories.PART_LABELS),
            train=part(split.train),
            val=([], []),
            test=part(split.test),
            out_path=path,
            seed=11,
            epochs=2,
            lr=0.003,
            batch_size=8,
            num_threads=1,
        )

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        first, second = run(Path(folder) / "a.pt"), run(Path(folder) / "b.pt")
    assert first.history == second.history
    assert first.test == second.test and first.baseline_test == second.baseline_test
    assert first.hyperparameters == second.hyperparameters


def test_the_split_is_seeded_stratified_and_order_independent() -> None:
    items = [(f"c{i:03}", "ok" if i % 3 else "stain") for i in range(90)]
    split = stratified_split(items, test_share=0.2, val_share=0.1, seed=5)
    assert split == stratified_split(list(reversed(items)), test_share=0.2, val_share=0.1, seed=5)
    assert split != stratified_split(items, test_share=0.2, val_share=0.1, seed=6)
    labels = dict(items)
    assert sum(labels[k] == "stain" for k in split.test) == 6
    assert sum(labels[k] == "ok" for k in split.test) == 12
    assert len(split.train) + len(split.val) + len(split.test) == 90


def test_a_cancelled_run_registers_nothing_and_leaves_serving(
    parts_workflow: Any, serving: Any, make_user: Any, monkeypatch: Any, settings: Any
) -> None:
    settings.LOOPGATE_TRAINING_CANCEL_POLL_SECONDS = 0
    factories.labelled_cases_create(parts_workflow, 12)
    admin = make_user("ada", superuser=True)
    run = retraining.training_run_start(
        workflow=parts_workflow,
        actor=admin,
        request=retraining.TrainingRequest(**{**QUICK, "epochs": 4}),
    )
    real_reporter = retraining._progress_reporter

    def cancel_after_first_epoch(run_id: int) -> Any:
        report = real_reporter(run_id)

        def wrapped(epoch: int, loss: float, val: float | None) -> None:
            report(epoch, loss, val)
            if epoch == 1:
                retraining.training_run_cancel(run=TrainingRun.objects.get(pk=run_id), actor=admin)

        return wrapped

    monkeypatch.setattr(retraining, "_progress_reporter", cancel_after_first_epoch)
    finished = retraining.training_run_execute(run_id=run.pk)
    assert finished.status == TrainingStatus.CANCELLED
    assert len(finished.progress) == 1
    assert "cancellation requested by ada" in finished.error
    assert finished.result_version is None
    assert ModelVersion.objects.count() == 1
    assert active_roles(parts_workflow) == {"serving": "tiny:v1"}


def test_a_queued_run_cancels_at_once_and_never_starts(
    people: dict[str, Any], parts_workflow: Any, serving: Any
) -> None:
    factories.labelled_cases_create(parts_workflow, 12)
    response = people["admin"].post("/api/v1/workflows/parts/training-runs/", QUICK, format="json")
    run_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    again = people["admin"].post("/api/v1/workflows/parts/training-runs/", QUICK, format="json")
    assert again.status_code == 409 and "still queued" in again.json()["error"]["message"]
    response = people["admin"].post(f"/api/v1/training-runs/{run_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert retraining.training_run_execute(run_id=run_id) is None
    assert people["reviewer"].post(f"/api/v1/training-runs/{run_id}/cancel/").status_code == 403
    assert people["stranger"].get(f"/api/v1/training-runs/{run_id}/").status_code == 404


def test_a_failed_run_says_why_and_leaves_serving(
    parts_workflow: Any, serving: Any, make_user: Any
) -> None:
    factories.labelled_cases_create(parts_workflow, 12)
    run = retraining.training_run_start(
        workflow=parts_workflow,
        actor=make_user("ada", superuser=True),
        request=retraining.TrainingRequest(epochs=1, batch_size=8),
    )
    assert run.base_version == serving  # fine-tunes the serving version
    serving.weights.storage.delete(serving.weights.name)
    finished = retraining.training_run_execute(run_id=run.pk)
    assert finished.status == TrainingStatus.FAILED
    assert "model file not found" in finished.error
    assert active_roles(parts_workflow) == {"serving": "tiny:v1"}
    assert ModelVersion.objects.count() == 1


def test_too_few_labels_are_refused(
    people: dict[str, Any], parts_workflow: Any, serving: Any
) -> None:
    factories.labelled_cases_create(parts_workflow, 5)
    response = people["admin"].post("/api/v1/workflows/parts/training-runs/", QUICK, format="json")
    assert response.status_code == 409
    assert (
        "at least 20 human-labelled cases; this workflow has 10"
        in response.json()["error"]["message"]
    )
    assert (
        people["reviewer"]
        .post("/api/v1/workflows/parts/training-runs/", QUICK, format="json")
        .status_code
        == 403
    )
    assert not TrainingRun.objects.exists()


def test_stale_runs_are_marked_failed(parts_workflow: Any, serving: Any, settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    run = TrainingRun.objects.create(
        workflow=parts_workflow,
        status=TrainingStatus.RUNNING,
        architecture="squeezenet1_1",
        input_size=32,
        seed=1,
        epochs_total=3,
        heartbeat_at=timezone.now() - timedelta(hours=2),
    )
    assert retraining.training_runs_fail_stale() == 1
    run.refresh_from_db()
    assert run.status == TrainingStatus.FAILED and "stopped reporting" in run.error


class TestRule:
    def test_off_by_default(self, parts_workflow: Any, serving: Any) -> None:
        factories.labelled_cases_create(parts_workflow, 40)
        assert not RetrainRule.objects.exists()
        assert retraining.retrain_rules_check() == 0
        assert not TrainingRun.objects.exists()

    def test_every_n_new_labels(
        self, people: dict[str, Any], parts_workflow: Any, serving: Any
    ) -> None:
        factories.labelled_cases_create(parts_workflow, 15)
        response = people["admin"].put(
            "/api/v1/workflows/parts/retrain-rule/",
            {"enabled": True, "every_n_labels": 10, "after_step_down": False, "epochs": 2},
            format="json",
        )
        assert response.status_code == 200 and response.json()["labels_at_last_trigger"] == 30
        assert retraining.retrain_rules_check() == 0
        factories.labelled_cases_create(parts_workflow, 5, seed=1)
        assert retraining.retrain_rules_check() == 1
        run = TrainingRun.objects.get()
        assert (run.trigger, run.status, run.epochs_total) == ("rule:labels", "queued", 2)
        assert "10 new labels" in run.reason
        assert retraining.retrain_rules_check() == 0

    def test_after_a_step_down(self, parts_workflow: Any, serving: Any, make_user: Any) -> None:
        factories.labelled_cases_create(parts_workflow, 12)
        retraining.retrain_rule_update(
            workflow=parts_workflow,
            actor=make_user("ada"),
            enabled=True,
            every_n_labels=None,
            after_step_down=True,
        )
        assert retraining.retrain_rules_check() == 0
        LevelChange.objects.create(
            workflow=parts_workflow,
            automatic=True,
            from_level="partial",
            to_level="assistance",
            before={"level": "partial"},
            after={"level": "assistance"},
            reason="audited accuracy fell below the target",
        )
        assert retraining.retrain_rules_check() == 1
        assert TrainingRun.objects.get().trigger == "rule:step_down"


def test_labelled_cases_come_from_reviewer_labels_only(parts_workflow: Any) -> None:
    labelled = factories.labelled_cases_create(parts_workflow, 3)
    factories.case_create(
        parts_workflow, factories.part_image("ok", 1), status=CaseStatus.IN_REVIEW
    )
    factories.case_create(
        parts_workflow, factories.part_image("ok", 2), human_label="ok", is_gold=True
    )
    factories.case_create(parts_workflow, factories.part_image("ok", 3), human_label="unknown")
    found = retraining.labelled_cases(workflow=parts_workflow)
    assert {case_id for case_id, _ in found} == {str(c.id) for c in labelled}
