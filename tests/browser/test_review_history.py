"""My verdicts: paging through the history and asking an admin to change a verdict."""

from __future__ import annotations

import pytest

from review import services
from tests.browser.conftest import axe_violations
from tests.review import factories
from workflows.models import CaseEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_history_asks_an_admin_to_change_a_verdict(logged_in, live_server):
    workflow = factories.workflow_create("past-line")
    reviewer = factories.reviewer_create("hana", workflow)
    for index in range(3):
        factories.case_in_review(workflow, external_id=f"past-{index}")
        lease = services.review_next(workflow=workflow, reviewer=reviewer)
        services.verdict_submit(task_id=lease.task_id, reviewer=reviewer, label="ok")

    page = logged_in("hana", width=1366, height=768)
    page.goto(f"{live_server.url}/review/past-line/history/")
    assert page.locator("#history-count").inner_text().startswith("3 verdicts")
    row = page.locator("tr", has_text="past-1")
    row.get_by_label("Should be").select_option("crack")
    row.get_by_label("Why").fill("there is a crack at the edge")
    row.get_by_role("button", name="Ask an admin").click()
    row.locator(".change-status", has_text="Asked: ok → crack").wait_for()
    event = CaseEvent.objects.get(kind="verdict_change_requested")
    assert event.case.external_id == "past-1" and event.data["to_label"] == "crack"
    assert event.reason == "there is a crack at the edge"

    assert row.get_by_role("button", name="Ask an admin").is_disabled()
    page.reload()
    row = page.locator("tr", has_text="past-1")
    row.get_by_label("Why").fill("once more")
    row.get_by_role("button", name="Ask an admin").click()
    row.locator(".change-status", has_text="already requested").wait_for()
    assert CaseEvent.objects.filter(kind="verdict_change_requested").count() == 1
    assert not axe_violations(page)

    page.get_by_label("Label").select_option("crack")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**label=crack**")
    assert page.locator("#history-count").inner_text().startswith("0 verdicts")
