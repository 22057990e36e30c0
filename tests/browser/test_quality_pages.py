"""The automation page's two guarantees and cost-aware threshold, and the models page's
training options, in a real browser: shown, accessible (axe), screenshotted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_guarantees_costs_and_training_options_are_shown(
    logged_in: Any,
    live_server: Any,
    make_user: Any,
    make_workflow: Any,
    member: Any,
    output_dir: Path,
) -> None:
    workflow = make_workflow("axe", level="assistance")
    admin = make_user("ada")
    member(admin, workflow, review=True, admin=True)
    page = logged_in("ada", width=1280, height=1800)
    page.goto(
        f"{live_server.url}/workflows/axe/automation/"
        "?target_error=0.02&confidence=0.95&review_cost=2&error_cost=40"
    )
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("target-error").inner_text().strip() == "2.0%"
    assert "at most 2.0% wrong among the cases the model decides alone" in page.content()
    assert page.get_by_test_id("cost-threshold").is_visible()
    assert page.get_by_label("Target error among automatic decisions").is_visible()
    assert not axe_violations(page)
    page.screenshot(path=str(output_dir / "quality-automation-page.png"), full_page=True)

    page.goto(f"{live_server.url}/models/axe/")
    page.wait_for_load_state("networkidle")
    mode = page.get_by_test_id("train-mode").inner_text()
    assert "fine-tunes surface-cnn:v1" in mode and "trains from random weights" in mode
    assert not page.get_by_label("Horizontal flips").is_checked()
    assert page.get_by_label("Brightness jitter (±)").input_value() == "0.1"
    assert not axe_violations(page)
    page.locator("#retraining").screenshot(path=str(output_dir / "quality-training-form.png"))
