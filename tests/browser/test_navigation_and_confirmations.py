"""In a real Chromium: the navigation bar by role and with the keyboard, confirmations
before promote, rollback and level changes (with and without the page's script), a
training run's result appearing without a reload, and the threshold form submitting.
Saves test-output/navigation-*.png."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from automation.models import LevelChange
from modelops.models import Deployment, DeploymentEvent, ModelVersion, TrainingRun
from tests.automation.conftest import LabelledCases

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-only"


def version(workflow: Any, number: int) -> ModelVersion:
    """A version row with a stored (never loaded) weights file, so it can be rolled back to."""
    weights = default_storage.save(f"models/line-cnn-{number}.pt", ContentFile(b"weights"))
    return ModelVersion.objects.create(
        name="line-cnn",
        version=number,
        architecture="fake",
        labels=list(workflow.labels),
        weights=weights,
        sha256="0" * 64,
    )


@pytest.fixture
def line(make_user: Any, make_workflow: Any, member: Any) -> dict[str, Any]:
    workflow = make_workflow("line", level="shadow", serving=False)
    workflow.name = "Surface inspection"
    workflow.save(update_fields=["name"])
    first, second, third = (version(workflow, n) for n in (1, 2, 3))
    Deployment.objects.create(
        workflow=workflow, model_version=first, role="serving", active=False,
        ended_at=timezone.now(),
    )  # fmt: skip
    Deployment.objects.create(workflow=workflow, model_version=second, role="serving")
    Deployment.objects.create(workflow=workflow, model_version=third, role="shadow")
    other = make_workflow("paint", serving=False)
    other.name = "Paint defects"
    other.save(update_fields=["name"])
    ada = make_user("ada")
    member(ada, workflow, admin=True)
    member(ada, other, review=True)
    rita = make_user("rita")
    member(rita, workflow, review=True)
    make_user("root", superuser=True)
    return {"workflow": workflow, "versions": (first, second, third), "other": other}


def some_reviews(workflow: Any) -> None:
    """A few days of two reviewers' verdicts, some on the same cases, and a skip."""
    from django.contrib.auth import get_user_model

    from tests.review.factories import case_in_review
    from tests.review.test_reviewer_stats import skip, verdict

    users = get_user_model().objects
    ada, rita = users.get(username="ada"), users.get(username="rita")
    labels = list(workflow.labels)
    now = timezone.now()
    for day in range(6):
        for k in range(3 + day % 3):
            _, task = case_in_review(workflow)
            at = now - timedelta(days=day, minutes=10 * k)
            verdict(task, rita, labels[k % len(labels)], at, seconds=8 + 3 * k)
            if k % 2 == 0:
                other = labels[(k + (day == 2)) % len(labels)]
                verdict(task, ada, other, at + timedelta(minutes=1), seconds=12 + k)
    skip(case_in_review(workflow)[1], rita, now - timedelta(days=1))


def nav_links(page: Any) -> list[str]:
    return page.get_by_role("navigation", name="Main").locator("a[data-section]").all_inner_texts()


def test_the_navigation_bar_by_role(
    logged_in: Any, live_server: Any, line: dict[str, Any], output_dir: Path
) -> None:
    reviewer = logged_in("rita")
    assert nav_links(reviewer) == ["Review", "Cases"]
    review = reviewer.get_by_role("link", name="Review", exact=True)
    assert review.get_attribute("aria-current") == "page"
    assert reviewer.get_by_test_id("current-user").inner_text() == "rita"
    reviewer.goto(f"{live_server.url}/models/")
    assert nav_links(reviewer) == ["Review", "Cases"], "no Models, Automation or Reviewers"
    assert reviewer.get_by_role("link", name="Django admin").count() == 0
    assert "line" not in reviewer.locator("main").inner_text()

    admin = logged_in("ada", width=1360, height=800)
    assert nav_links(admin) == [
        "Review",
        "Cases",
        "Reviewers",
        "Automation",
        "Monitoring",
        "Models",
        "Settings",
    ]
    assert admin.get_by_role("link", name="Django admin").count() == 0
    admin.goto(f"{live_server.url}/workflows/line/automation/")
    main = admin.get_by_role("navigation", name="Main")
    assert main.get_by_role("link", name="Automation").get_attribute("aria-current") == "page"
    assert main.get_by_role("link", name="Models").get_attribute("href") == "/models/line/"

    # The workflow switcher with the keyboard: open, pick the other workflow, where this
    # user only reviews, so it leads to that workflow's review screen.
    summary = admin.get_by_test_id("workflow-switcher").locator("summary")
    assert "Surface inspection" in summary.inner_text()
    summary.focus()
    admin.keyboard.press("Enter")
    paint = admin.get_by_role("link", name="Paint defects")
    assert paint.is_visible() and paint.get_attribute("href") == "/review/paint/"
    admin.screenshot(path=str(output_dir / "navigation-switcher.png"))
    admin.keyboard.press("Escape")
    assert not paint.is_visible()
    assert admin.evaluate("() => document.activeElement.tagName") == "SUMMARY"

    main.get_by_role("link", name="Models").click()
    admin.wait_for_url("**/models/line/")
    models = admin.get_by_role("navigation", name="Main").get_by_role("link", name="Models")
    assert models.get_attribute("aria-current") == "page"
    admin.goto(f"{live_server.url}/models/line/compare/")
    models = admin.get_by_role("navigation", name="Main").get_by_role("link", name="Models")
    assert models.get_attribute("aria-current") == "true", "a page within the section"
    some_reviews(line["workflow"])
    admin.goto(f"{live_server.url}/review/line/reviewers/")
    reviewers = admin.get_by_role("navigation", name="Main").get_by_role("link", name="Reviewers")
    assert reviewers.get_attribute("aria-current") == "page"
    admin.get_by_role("heading", name="Reviewers of Surface inspection").wait_for()
    admin.screenshot(path=str(output_dir / "navigation-reviewers-page.png"), full_page=True)

    bar_height = "() => document.querySelector('.topbar').getBoundingClientRect().height"
    assert admin.evaluate(bar_height) == 48, "the review screen's layout counts on it"
    phone = logged_in("ada", width=390, height=800)
    phone.goto(f"{live_server.url}/review/line/reviewers/")
    assert phone.evaluate(
        "() => { const bar = document.querySelector('.topbar');"
        " return bar.scrollWidth <= bar.clientWidth; }"
    ), "the bar wraps instead of overflowing on a phone"
    assert phone.get_by_role("button", name="Log out").is_visible()
    phone.screenshot(path=str(output_dir / "navigation-phone.png"))

    # A firing alert: the badge on every page, in words, leading to the monitoring page.
    from automation.models import Alert

    Alert.objects.create(workflow=line["workflow"], kind="accuracy", message="missed", data={})
    admin.goto(f"{live_server.url}/models/")
    badge = admin.get_by_role("link", name="Alerts: 1 firing, not acknowledged")
    assert badge.is_visible() and badge.inner_text().startswith("Alerts: 1")
    assert badge.get_attribute("href") == "/workflows/line/monitoring/"
    assert admin.evaluate(bar_height) == 48, "the badge keeps the bar's height"
    admin.screenshot(path=str(output_dir / "navigation-alerts-badge.png"))
    badge.focus()
    admin.keyboard.press("Enter")
    admin.wait_for_url("**/workflows/line/monitoring/")
    assert reviewer.goto(f"{live_server.url}/") is not None
    assert reviewer.get_by_test_id("alerts-badge").count() == 0, "reviewers do not see it"

    root = logged_in("root")
    admin_link = root.get_by_role("link", name="Django admin")
    assert admin_link.is_visible() and admin_link.get_attribute("href") == "/admin/"
    root.screenshot(path=str(output_dir / "navigation-superuser.png"))


def test_promote_and_rollback_ask_first(
    logged_in: Any, live_server: Any, line: dict[str, Any], output_dir: Path
) -> None:
    _, second, _ = line["versions"]
    page = logged_in("ada", width=1360, height=900)
    page.goto(f"{live_server.url}/models/line/")
    assert not page.get_by_text("Yes, promote line-cnn:v3").is_visible(), "the dialog asks"
    page.get_by_label("Why promote it?").fill("better on 400 paired cases")
    page.get_by_role("button", name="Promote line-cnn:v3 to serving").click()
    dialog = page.get_by_role("dialog", name="Promote line-cnn:v3 to serving?")
    dialog.wait_for()
    assert "instead of line-cnn:v2" in dialog.inner_text()
    assert page.evaluate("() => document.activeElement.textContent") == "Cancel"
    page.screenshot(path=str(output_dir / "navigation-confirm-dialog.png"))

    dialog.get_by_role("button", name="Cancel").click()
    assert not dialog.is_visible()
    assert page.url.endswith("/models/line/")
    serving = Deployment.objects.get(workflow=line["workflow"], role="serving", active=True)
    assert serving.model_version == second and not DeploymentEvent.objects.exists()
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Promote line-cnn:v3 to serving").click()
    dialog.wait_for()
    page.keyboard.press("Escape")
    assert not dialog.is_visible() and not DeploymentEvent.objects.exists()

    page.get_by_role("button", name="Promote line-cnn:v3 to serving").click()
    dialog.get_by_role("button", name="Promote").click()
    page.get_by_text("line-cnn:v3 is now serving").wait_for()
    assert DeploymentEvent.objects.get().action == "promote"

    page.get_by_label("Why roll back to line-cnn:v2?").fill("false alarms on line 2")
    page.get_by_role("button", name="Roll back to line-cnn:v2").click()
    rollback = page.get_by_role("dialog", name="Roll back to line-cnn:v2?")
    rollback.get_by_role("button", name="Cancel").click()
    assert DeploymentEvent.objects.count() == 1
    page.get_by_role("button", name="Roll back to line-cnn:v2").click()
    rollback.get_by_role("button", name="Roll back").click()
    page.get_by_text("Rolled back: line-cnn:v2 is serving again.").wait_for()
    assert [e.action for e in DeploymentEvent.objects.order_by("id")] == ["promote", "rollback"]


def test_without_the_script_a_confirm_box_is_required(
    chromium: Any, live_server: Any, line: dict[str, Any]
) -> None:
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/login/?next=/models/line/", timeout=90_000)
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/models/line/")
    box = page.get_by_label("Yes, promote line-cnn:v3")
    assert box.is_visible() and box.get_attribute("required") is not None
    page.get_by_label("Why promote it?").fill("better")
    page.get_by_role("button", name="Promote line-cnn:v3 to serving").click()
    assert page.evaluate("() => document.querySelector('input[name=confirm]:invalid') !== null")
    assert not DeploymentEvent.objects.exists(), "the browser does not send it unticked"
    box.check()
    page.get_by_role("button", name="Promote line-cnn:v3 to serving").click()
    page.get_by_text("line-cnn:v3 is now serving").wait_for()
    context.close()


def test_a_level_change_asks_first(logged_in: Any, live_server: Any, line: dict[str, Any]) -> None:
    workflow = line["workflow"]
    page = logged_in("ada", width=1360, height=900)
    page.goto(f"{live_server.url}/workflows/line/automation/")
    page.get_by_label("Level", exact=True).select_option("human_only")
    page.get_by_label("Reason for the change").fill("the camera is being replaced")
    page.get_by_role("button", name="Save the policy").click()
    dialog = page.get_by_role("dialog", name="Change the level to Human only?")
    dialog.wait_for()
    assert "from Shadow to Human only" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert not LevelChange.objects.exists()
    assert page.get_by_label("Reason for the change").input_value() == (
        "the camera is being replaced"
    ), "cancelling keeps what was typed"

    page.get_by_role("button", name="Save the policy").click()
    with page.expect_navigation():
        dialog.get_by_role("button", name="Change to Human only").click()
    assert page.get_by_test_id("current-level").inner_text() == "Human only"
    workflow.refresh_from_db()
    assert workflow.level == "human_only" and LevelChange.objects.count() == 1

    # Other fields change without a dialog.
    page.get_by_label("Audit rate").fill("0.2")
    page.get_by_label("Reason for the change").fill("audit more")
    page.get_by_role("button", name="Save the policy").click()
    page.get_by_text("Saved: audit_rate changed.").wait_for()
    assert LevelChange.objects.count() == 2


def test_a_finished_training_run_shows_its_result_without_a_reload(
    logged_in: Any, live_server: Any, line: dict[str, Any]
) -> None:
    workflow = line["workflow"]
    _, second, _ = line["versions"]
    run = TrainingRun.objects.create(
        workflow=workflow,
        status="queued",
        trigger="manual",
        base_version=second,
        architecture="squeezenet1_1",
        input_size=32,
        seed=5,
        epochs_total=3,
    )
    page = logged_in("ada", width=1360, height=900)
    page.goto(f"{live_server.url}/models/line/")
    row = page.locator(f'tr[data-run-id="{run.pk}"]')
    assert row.locator('[data-field="status"]').inner_text() == "queued"
    assert row.locator('[data-field="result"]').inner_text() == "—"
    page.evaluate("() => { window.__sameDocument = true; }")

    result = version(workflow, 4)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded",
        progress=[{"epoch": e, "loss": 0.5 / e, "val_accuracy": 0.8} for e in (1, 2, 3)],
        metrics={
            "test": {"accuracy": 0.912, "n": 40},
            "baseline": "base version",
            "baseline_test": {"accuracy": 0.874},
            "n_test": 40,
        },
        result_version=result,
        finished_at=timezone.now(),
    )
    page.wait_for_function(
        "sel => document.querySelector(sel).textContent === 'line-cnn:v4'",
        arg=f'tr[data-run-id="{run.pk}"] [data-field="result"]',
    )
    assert row.locator('[data-field="status"]').inner_text() == "succeeded"
    assert row.locator('[data-field="heldout"]').inner_text().startswith("0.912 (0.874 base")
    assert "40 test cases" in row.locator('[data-field="heldout"]').inner_text()
    assert row.locator('[data-field="epoch"]').inner_text() == "3/3"
    assert row.get_by_role("button", name="Cancel").count() == 0
    notice = page.get_by_role("status").filter(has_text=f"Training run {run.pk} succeeded")
    assert "line-cnn:v4 is the new shadow challenger" in notice.inner_text()
    assert page.evaluate("() => window.__sameDocument === true"), "no reload happened"


def test_the_threshold_form_submits(logged_in: Any, live_server: Any, line: dict[str, Any]) -> None:
    workflow = line["workflow"]
    _, second, _ = line["versions"]
    labelled = LabelledCases(second)
    labelled.simulate(workflow, 300, accuracy=0.95, reason="shadow", seed=3)
    page = logged_in("ada", width=1360, height=900)
    page.goto(f"{live_server.url}/workflows/line/automation/")
    form = page.get_by_role("form", name="Recalculate the recommendation")
    assert form.evaluate("f => f.checkValidity()"), "the page's own values can be submitted"
    form.get_by_label("Target error among auto-decided cases").fill("0.0375")
    form.get_by_label("Confidence").fill("0.975")
    form.get_by_role("button", name="Recalculate").click()
    page.wait_for_url("**target_error=0.0375**")
    assert "confidence=0.975" in page.url
    recommendation = page.get_by_test_id("recommendation").inner_text()
    assert "3.75%" in recommendation and "98% confidence" in recommendation
    smallest = page.get_by_label("Target error among auto-decided cases")
    smallest.fill("0.0001")
    assert form.evaluate("f => f.checkValidity()"), "the server's minimum is accepted"
    smallest.fill("0.6")
    assert not form.evaluate("f => f.checkValidity()"), "above the server's maximum"
