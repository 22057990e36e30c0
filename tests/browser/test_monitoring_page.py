"""The monitoring dashboard in a real Chromium during a lighting drift: the charts are
drawn under the strict Content Security Policy, the tables carry the same numbers, an
admin acknowledges the drift alert; axe-core finds nothing serious. Saves
test-output/monitoring-dashboard.png."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from automation.models import Alert, AlertState
from monitoring.services import monitoring_check_workflow
from tests.browser.conftest import axe_violations
from tests.monitoring.test_monitoring import fill

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def test_the_dashboard_shows_the_drift_and_an_admin_acknowledges_it(
    logged_in: Any, live_server: Any, make_user: Any, make_workflow: Any, member: Any
) -> None:
    from modelops.models import Deployment

    workflow = make_workflow("line", level="partial", target_accuracy=0.5)
    admin = make_user("ada")
    member(admin, workflow, review=True, admin=True)
    start = timezone.now() - timedelta(hours=3)
    Deployment.objects.filter(workflow=workflow).update(created_at=start - timedelta(minutes=1))
    moment = fill(workflow, 300, brightness=150, start=start, seed=1)
    moment = fill(workflow, 200, brightness=150, start=moment + timedelta(minutes=40), seed=2)
    monitoring_check_workflow(workflow_id=workflow.pk)
    for seed in (3, 4):
        moment = fill(workflow, 200, brightness=85, start=moment + timedelta(minutes=40), seed=seed)
        monitoring_check_workflow(workflow_id=workflow.pk)
    [alert] = Alert.objects.filter(workflow=workflow, kind="input_drift")

    page = logged_in("ada", width=1280, height=900)
    page.goto(f"{live_server.url}/workflows/line/monitoring/")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => typeof window.Chart === 'function'")
    drawn = page.evaluate(
        "() => Array.from(document.querySelectorAll('canvas'))"
        ".filter(c => window.Chart.getChart(c)).length"
    )
    assert drawn == 7
    assert page.evaluate(
        "() => !!window.Chart.getChart(document.getElementById('chart-deadlines'))"
    )
    assert page.locator(".health .state").inner_text() == "drift"
    assert page.locator("tr.drifted th", has_text="brightness").count() == 1
    assert "brightness" in page.locator(".alert-firing").inner_text()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "monitoring-dashboard.png"), full_page=True)
    assert not axe_violations(page)

    page.get_by_label("Note").fill("checking the lamp over the belt")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state("networkidle")
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_by == admin
    assert "checking the lamp" in page.locator(".alert-acknowledged").inner_text()

    page.goto(f"{live_server.url}/monitoring/")
    assert page.get_by_role("link", name="Line").count() == 1
