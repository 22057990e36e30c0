"""The automation page in a real Chromium: an admin raises the level with the keyboard,
is refused where the evidence is missing, applies the recommended threshold, and sees
the automatic step down. Checks labels, focus and layout at laptop and tablet widths;
saves test-output/automation-page.png (and -tablet.png)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from automation.models import LevelChange
from automation.services import automation_check_workflow
from tests.automation.conftest import LABELS, LabelledCases
from tests.browser.conftest import watch_csp

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
PASSWORD = "pw-for-tests-only"
NO_OVERFLOW = "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
FOCUS_VISIBLE = (
    "() => { const s = getComputedStyle(document.activeElement);"
    " return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"
)


@pytest.fixture(scope="module")
def automation_chromium() -> Any:
    if not CHROMIUM.exists():
        pytest.skip("needs chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def line(settings: Any, make_user: Any, member: Any) -> dict[str, Any]:
    from modelops.models import Deployment, ModelVersion
    from workflows.models import Workflow

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    version = ModelVersion.objects.create(
        name="surface-cnn",
        version=3,
        architecture="fake",
        labels=list(LABELS),
        weights="models/fake.pt",
        sha256="0" * 64,
    )
    workflow = Workflow.objects.create(
        slug="line",
        name="Surface inspection",
        labels=list(LABELS),
        level="shadow",
        confidence_threshold=0.9,
        audit_rate=0.1,
        target_accuracy=0.9,
        target_error=0.1,
        min_evidence=200,
    )
    Deployment.objects.create(workflow=workflow, model_version=version, role="serving")
    labelled = LabelledCases(version)
    labelled.simulate(workflow, 150, accuracy=0.95, reason="shadow", seed=11)
    labelled.simulate(workflow, 60, accuracy=0.6, reason="low_confidence", seed=12)
    admin = make_user("boss", password=PASSWORD)
    member(admin, workflow, admin=True)
    return {"workflow": workflow, "labelled": labelled}


def open_page(browser: Any, live_server: Any, *, width: int, height: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.csp_violations = watch_csp(context)
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/login/?next=/workflows/line/automation/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/workflows/line/automation/")
    return page


def test_admin_walks_the_automation_page(
    automation_chromium: Any, live_server: Any, line: dict
) -> None:
    browser = automation_chromium
    workflow = line["workflow"]
    page = open_page(browser, live_server, width=1280, height=900)
    assert page.get_by_role("heading", name="Surface inspection").is_visible()
    assert page.get_by_test_id("current-level").inner_text() == "Shadow"
    assert "evidence missing" in page.get_by_test_id("gate-partial").inner_text()
    chart = page.get_by_role("img", name="Automation rate versus error among auto-decided cases")
    assert chart.is_visible()
    assert page.locator("svg .recommended").count() == 1
    assert page.evaluate(NO_OVERFLOW)

    # Refused: 150 labels, 200 needed; the form says what is missing and takes the focus.
    page.get_by_label("Level", exact=True).select_option("partial")
    page.get_by_label("Reason for the change").fill("looks good already")
    page.get_by_role("button", name="Save the policy").click()
    page.get_by_role("dialog", name="Change the level to Partial automation?").get_by_role(
        "button", name="Change to Partial automation"
    ).click()
    error = page.locator("#policy-errors")
    error.wait_for()
    assert "cannot raise the level to partial" in error.inner_text()
    assert "only 150 human-labelled cases, 200 needed" in error.inner_text()
    assert page.evaluate("() => document.activeElement.id") == "policy-errors"
    assert page.get_by_test_id("current-level").inner_text() == "Shadow"

    # Reviewers keep labelling in shadow mode; then the evidence is there.
    line["labelled"].simulate(workflow, 550, accuracy=0.95, reason="shadow", seed=14)
    page.goto(page.url)
    assert "evidence sufficient" in page.get_by_test_id("gate-partial").inner_text()

    # Allowed with the keyboard: partial, cracks never auto-decided.
    page.get_by_label("Level", exact=True).select_option("partial")
    crack = page.get_by_role("group", name="crack")
    crack.get_by_label("Never auto-decide").check()
    ok = page.get_by_role("group", name="ok", exact=True)
    assert ok.get_by_label("Threshold for ok").is_disabled()
    ok.get_by_label("Own threshold").check()
    assert ok.get_by_label("Threshold for ok").is_enabled()
    ok.get_by_label("Threshold for ok").fill("0.95")
    reason = page.get_by_label("Reason for the change")
    reason.fill("700 shadow labels meet the 10% error target")
    reason.press("Tab")
    assert page.evaluate(FOCUS_VISIBLE), "the focused control shows a visible focus ring"
    page.get_by_role("button", name="Save the policy").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Change the level to Partial automation?")
    dialog.wait_for()
    assert page.evaluate("() => document.activeElement.textContent") == "Cancel"
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("status").first.inner_text().startswith("Saved:")
    assert page.get_by_test_id("current-level").inner_text() == "Partial automation"
    workflow.refresh_from_db()
    assert workflow.level == "partial"
    assert workflow.class_thresholds == {"crack": None, "ok": 0.95}

    # The recommended threshold, applied as an audited change.
    recommendation = page.get_by_test_id("recommendation").inner_text()
    assert (
        "Recommended threshold" in recommendation and "expected automation rate" in recommendation
    )
    page.get_by_label("Reason for applying it").fill("calibrated for 10% error")
    page.get_by_role("button", name="Apply threshold").click()
    page.wait_for_load_state()
    assert "Threshold set to" in page.get_by_role("status").first.inner_text()
    assert LevelChange.objects.filter(workflow=workflow).count() == 2

    # A drifted stream: audited accuracy collapses and the workflow steps down by itself.
    line["labelled"].simulate(workflow, 40, accuracy=0.5, reason="audit", level="partial", seed=13)
    assert automation_check_workflow(workflow_id=workflow.pk) is not None
    page.reload()
    banner = page.get_by_role("alert").filter(has_text="Firing alerts")
    assert "Stepped down from partial to assistance" in banner.inner_text()
    assert page.get_by_test_id("current-level").inner_text() == "AI assistance"
    assert (
        page.get_by_test_id("level-change").first.get_by_text("automatic", exact=True).is_visible()
    )
    assert "fresh evidence only" in page.get_by_test_id("gate-partial").inner_text()

    # Back at assistance, reviewers label every case again: fresh evidence builds up.
    line["labelled"].simulate(workflow, 150, accuracy=0.95, reason="assistance", seed=15)
    page.reload()
    assert (
        "only 150 human-labelled cases, 200 needed"
        in page.get_by_test_id("gate-partial").inner_text()
    )
    assert chart.is_visible()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "automation-page.png"), full_page=True)
    page.context.close()
    assert not page.csp_violations, page.csp_violations

    tablet = open_page(browser, live_server, width=820, height=1180)
    assert tablet.evaluate(NO_OVERFLOW), "no sideways scrolling at tablet width"
    tablet.screenshot(path=str(OUTPUT / "automation-page-tablet.png"), full_page=True)
    tablet.context.close()
    assert not tablet.csp_violations, tablet.csp_violations
