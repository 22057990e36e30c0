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
    # Once asked, the row says where the request stands instead of offering the form.
    row = page.locator("tr", has_text="past-1")
    row.locator(".change-outcome", has_text="waiting for an admin").wait_for()
    assert row.get_by_role("button", name="Ask an admin").count() == 0
    assert CaseEvent.objects.filter(kind="verdict_change_requested").count() == 1
    assert not axe_violations(page)

    page.get_by_label("Label").select_option("crack")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**label=crack**")
    assert page.locator("#history-count").inner_text().startswith("0 verdicts")


def test_an_admin_answers_change_requests_on_the_reviewers_page(logged_in, live_server):
    workflow = factories.workflow_create("answer-line")
    reviewer = factories.reviewer_create("hana", workflow)
    factories.reviewer_create("ines", workflow, admin=True)
    verdicts = []
    for index in range(2):
        factories.case_in_review(workflow, external_id=f"asked-{index}")
        lease = services.review_next(workflow=workflow, reviewer=reviewer)
        verdict = services.verdict_submit(task_id=lease.task_id, reviewer=reviewer, label="ok")
        services.verdict_change_request(
            reviewer=reviewer, verdict_id=verdict.pk, label="crack", reason=f"crack {index}"
        )
        verdicts.append(verdict)

    page = logged_in("ines", width=1366, height=900)
    page.goto(f"{live_server.url}/review/answer-line/reviewers/")
    section = page.get_by_test_id("change-requests")
    first = section.locator(f"tr[data-verdict='{verdicts[0].pk}']")
    first.get_by_role("button", name="Accept").click()  # no reason yet: the form says so
    first.get_by_label("Reason for hana").fill("the crack is visible at the edge")
    first.get_by_role("button", name="Accept").click()
    first.locator(".change-status", has_text="Accepted: the verdict is now crack").wait_for()
    second = section.locator(f"tr[data-verdict='{verdicts[1].pk}']")
    second.get_by_label("Reason for hana").fill("no crack in this one")
    second.get_by_role("button", name="Decline").click()
    second.locator(".change-status", has_text="Declined").wait_for()
    assert not axe_violations(page)
    page.screenshot(path="test-output/change-requests-answered.png", full_page=True)

    accepted = CaseEvent.objects.get(kind="verdict_change_decided", data__decision="accept")
    assert accepted.data["verdict"] == verdicts[0].pk
    verdicts[0].refresh_from_db()
    verdicts[0].case.refresh_from_db()
    assert (verdicts[0].label, verdicts[0].case.decision_label) == ("crack", "crack")
    page.reload()
    section.get_by_text("No open change requests").wait_for()

    own = logged_in("hana", width=1366, height=768)
    own.goto(f"{live_server.url}/review/answer-line/history/")
    own.locator(".change-outcome", has_text="accepted").wait_for()
    own.locator(".change-outcome", has_text="declined").wait_for()
    assert not axe_violations(own)
