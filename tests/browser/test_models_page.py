"""The models page in a real headless Chromium: live training progress, registering a
version through the form, deploying it as shadow, promoting, and the comparison page."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from modelops.models import TrainingRun
from tests.modelops import factories
from workflows.models import Case, CaseStatus, Prediction, Workflow, WorkflowMembership

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def labelled_predictions(workflow: Workflow, baseline: Any, challenger: Any, n: int) -> None:
    """Simulated human labels with both versions' predictions (challenger is better)."""
    rng = random.Random(4)
    labels = factories.PART_LABELS
    for k in range(n):
        truth, wrong = labels[k % 2], labels[(k + 1) % 2]
        case = Case.objects.create(
            workflow=workflow,
            image=f"cases/sim/{k}.png",
            image_format="PNG",
            image_width=40,
            image_height=40,
            image_bytes=1,
            image_sha256="0" * 64,
            status=CaseStatus.DECIDED,
            human_label=truth,
            labelled_at=timezone.now(),
        )
        for version, accuracy, role in ((baseline, 0.78, "serving"), (challenger, 0.93, "shadow")):
            right = rng.random() < accuracy
            Prediction.objects.create(
                case=case,
                model_version=version,
                role=role,
                label=truth if right else wrong,
                confidence=0.5 + 0.5 * rng.random() ** (0.5 if right else 2),
                scores={},
                latency_ms=3 + rng.random() * (2 if role == "serving" else 3),
            )


def test_models_page(
    logged_in: Any, live_server: Any, output_dir: Path, make_user: Any, tmp_path: Path
) -> None:
    workflow = Workflow.objects.create(
        slug="parts", name="Machined parts", level="assistance", labels=list(factories.PART_LABELS)
    )
    admin = make_user("ada")
    WorkflowMembership.objects.create(user=admin, workflow=workflow, can_admin=True)
    first = factories.version_create(
        workflow,
        factories.tiny_weights(tmp_path / "a.pt", factories.PART_LABELS, seed=1),
        factories.PART_LABELS,
        name="parts-cnn",
    )
    second = factories.version_create(
        workflow,
        factories.tiny_weights(tmp_path / "b.pt", factories.PART_LABELS, seed=2),
        factories.PART_LABELS,
        name="parts-cnn",
    )
    factories.deploy(workflow, first, "serving")
    factories.deploy(workflow, second, "shadow")
    labelled_predictions(workflow, first, second, 160)
    TrainingRun.objects.create(
        workflow=workflow,
        status="succeeded",
        trigger="manual",
        base_version=first,
        architecture="squeezenet1_1",
        input_size=32,
        seed=7,
        epochs_total=4,
        progress=[{"epoch": e, "loss": 0.7 / e, "val_accuracy": 0.8 + e / 50} for e in range(1, 5)],
        metrics={
            "test": {"accuracy": 0.931, "n": 58},
            "baseline": "base version",
            "baseline_test": {"accuracy": 0.862},
            "n_test": 58,
        },
        result_version=second,
        finished_at=timezone.now(),
    )
    running = TrainingRun.objects.create(
        workflow=workflow,
        status="running",
        trigger="rule:labels",
        base_version=first,
        architecture="squeezenet1_1",
        input_size=32,
        seed=11,
        epochs_total=8,
        progress=[{"epoch": 1, "loss": 0.61, "val_accuracy": 0.74}],
        started_at=timezone.now(),
    )

    page = logged_in("ada", width=1360, height=900)
    page.goto(f"{live_server.url}/models/parts/")
    page.get_by_role("heading", name="Models of Machined parts").wait_for()
    row = page.locator(f'tr[data-run-id="{running.pk}"]')
    assert row.locator('[data-field="epoch"]').inner_text() == "1/8"

    # Live progress: the worker reports epochs; the page follows without a reload.
    TrainingRun.objects.filter(pk=running.pk).update(
        progress=[
            {"epoch": 1, "loss": 0.61, "val_accuracy": 0.74},
            {"epoch": 2, "loss": 0.42, "val_accuracy": 0.81},
            {"epoch": 3, "loss": 0.35, "val_accuracy": 0.85},
        ]
    )
    page.wait_for_function(
        "sel => document.querySelector(sel).textContent === '3/8'",
        arg=f'tr[data-run-id="{running.pk}"] [data-field="epoch"]',
    )
    assert row.locator('[data-field="loss"]').inner_text() == "0.350"

    # Cancel the running run from the page.
    row.get_by_role("button", name="Cancel").click()
    page.get_by_text(f"Training run {running.pk} will stop after its current batch.").wait_for()
    TrainingRun.objects.filter(pk=running.pk).update(status="cancelled", finished_at=timezone.now())

    # Register a third version through the form (checked in the sandbox), then put it in shadow.
    weights = factories.tiny_weights(tmp_path / "parts-cnn-may.pt", factories.PART_LABELS, seed=3)
    form = page.locator("form", has=page.get_by_role("heading", name="Register a version"))
    form.get_by_label("Name").fill("parts-cnn")
    form.get_by_label("Architecture", exact=True).select_option("squeezenet1_1")
    form.get_by_label("Input size (px)").fill("32")
    form.get_by_label("Weights file").set_input_files(str(weights))
    form.get_by_label("Note (how it was trained)").fill("fine-tuned on May labels, 12 epochs")
    # The load check can outlast the click's own wait on a busy machine: the navigation
    # has the longer timeout.
    with page.expect_navigation(timeout=120_000):
        form.get_by_role("button", name="Check and register").click(no_wait_after=True)

    page.get_by_text("Registered parts-cnn:v3").wait_for()

    # Promote the shadow challenger (blue/green), then deploy v3 as the new challenger.
    page.get_by_label("Why promote it?").first.fill("better on 160 paired cases, McNemar p < 0.05")
    page.get_by_role("button", name="Promote parts-cnn:v2 to serving").click()
    page.get_by_role("dialog", name="Promote parts-cnn:v2 to serving?").get_by_role(
        "button", name="Promote"
    ).click()
    page.get_by_text("parts-cnn:v2 is now serving").wait_for()
    deploy = page.locator("form", has=page.get_by_role("heading", name="Deploy a version"))
    deploy.get_by_label("Version", exact=True).select_option(label="parts-cnn:v3")
    deploy.get_by_label("As", exact=True).select_option("shadow")
    deploy.get_by_label("Reason", exact=True).fill("next challenger")
    deploy.get_by_role("button", name="Deploy").click()
    page.get_by_text("parts-cnn:v3 is now the shadow.").wait_for()
    assert page.locator('[data-role="serving"]').inner_text() == "parts-cnn:v2"
    assert page.locator('[data-role="shadow"]').inner_text() == "parts-cnn:v3"
    assert page.get_by_role("button", name="Roll back to parts-cnn:v1").is_visible()
    log = page.locator("table.log")
    assert "promoted to serving" in log.inner_text() and "better on 160 paired" in log.inner_text()
    page.screenshot(path=str(output_dir / "models-page.png"), full_page=True)

    # The comparison page: the verdict and the pictures.
    page.goto(f"{live_server.url}/models/parts/compare/?baseline={first.pk}&challenger={second.pk}")
    page.get_by_role("heading", name="parts-cnn:v2 is better").wait_for()
    assert page.locator("figure.chart svg").count() == 3
    page.screenshot(path=str(output_dir / "models-compare.png"), full_page=True)
