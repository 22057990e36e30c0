"""An admin's answer to a reviewer's request to change an older verdict (D92)."""

from __future__ import annotations

import pytest

from kernel.errors import Forbidden, InvalidInput, NotFound
from review import errors, services
from review.models import ReviewTask, TaskKind, TaskStatus, Verdict
from review.selectors import change_requests, verdicts_history
from tests.review import factories
from workflows.models import CaseEvent, CaseStatus

pytestmark = pytest.mark.django_db


def verdict_on(workflow, reviewer, label="ok"):
    assignment = services.review_next(workflow=workflow, reviewer=reviewer)
    assert assignment is not None
    return services.verdict_submit(task_id=assignment.task_id, reviewer=reviewer, label=label)


def requested(reviewer, verdict, label="crack"):
    return services.verdict_change_request(
        reviewer=reviewer, verdict_id=verdict.pk, label=label, reason="missed the crack"
    )


@pytest.fixture
def admin(workflow):
    return factories.reviewer_create("ada", workflow, admin=True)


# --- Refusals first -------------------------------------------------------------------


def test_only_this_workflows_admins_may_decide(workflow, reviewer, admin, queue_case):
    queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    requested(reviewer, verdict)
    other = factories.workflow_create("other")
    other_admin = factories.reviewer_create("olga", other, admin=True)
    with pytest.raises(NotFound):
        services.verdict_change_decide(
            admin=other_admin, verdict_id=verdict.pk, decision="accept", reason="x"
        )
    with pytest.raises(Forbidden):
        services.verdict_change_decide(
            admin=reviewer, verdict_id=verdict.pk, decision="accept", reason="mine"
        )
    with pytest.raises(NotFound):
        services.verdict_change_decide(
            admin=admin, verdict_id=verdict.pk + 999, decision="accept", reason="x"
        )
    assert not CaseEvent.objects.filter(kind="verdict_change_decided").exists()
    verdict.refresh_from_db()
    assert verdict.label == "ok"


def test_bad_input_and_missing_request_are_refused(workflow, reviewer, admin, queue_case):
    queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    with pytest.raises(errors.NoChangeRequested):
        services.verdict_change_decide(
            admin=admin, verdict_id=verdict.pk, decision="accept", reason="x"
        )
    requested(reviewer, verdict)
    with pytest.raises(InvalidInput) as bad:
        services.verdict_change_decide(
            admin=admin, verdict_id=verdict.pk, decision="maybe", reason="x"
        )
    assert bad.value.field == "decision"
    with pytest.raises(InvalidInput) as bad:
        services.verdict_change_decide(
            admin=admin, verdict_id=verdict.pk, decision="accept", reason="  "
        )
    assert bad.value.field == "reason"


def test_a_request_is_decided_once(workflow, reviewer, admin, queue_case):
    queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    requested(reviewer, verdict)
    services.verdict_change_decide(
        admin=admin, verdict_id=verdict.pk, decision="decline", reason="the image shows no crack"
    )
    with pytest.raises(errors.ChangeAlreadyDecided):
        services.verdict_change_decide(
            admin=admin, verdict_id=verdict.pk, decision="accept", reason="changed my mind"
        )
    verdict.refresh_from_db()
    assert verdict.label == "ok"


# --- Decline --------------------------------------------------------------------------


def test_decline_records_the_answer_and_changes_nothing(workflow, reviewer, admin, queue_case):
    case, _task = queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    requested(reviewer, verdict)
    event = services.verdict_change_decide(
        admin=admin, verdict_id=verdict.pk, decision="decline", reason="no crack there"
    )
    assert event.kind == "verdict_change_decided" and event.actor == admin
    assert event.data["decision"] == "decline" and event.reason == "no crack there"
    case.refresh_from_db()
    verdict.refresh_from_db()
    assert (case.status, case.decision_label, verdict.label) == ("decided", "ok", "ok")
    assert change_requests(workflow=workflow, open_only=True) == []
    [listed] = change_requests(workflow=workflow)
    assert (listed["status"], listed["decided_by"]) == ("declined", "ada")
    [row] = verdicts_history(workflow=workflow, reviewer=reviewer)["results"]
    assert row["change"]["status"] == "declined"
    assert row["change"]["decision_reason"] == "no crack there"


# --- Accept ---------------------------------------------------------------------------


def test_accept_relabels_a_single_review_case_with_its_trail(workflow, reviewer, admin, queue_case):
    case, task = queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    requested(reviewer, verdict)
    assert [r["verdict"] for r in change_requests(workflow=workflow, open_only=True)] == [
        verdict.pk
    ]
    services.verdict_change_decide(
        admin=admin, verdict_id=verdict.pk, decision="accept", reason="the crack is visible"
    )
    verdict.refresh_from_db()
    case.refresh_from_db()
    assert verdict.label == "crack"
    assert (case.status, case.decision_label, case.human_label) == ("decided", "crack", "crack")
    assert case.decided_by == reviewer  # the reviewer's verdict still decides it
    decided = CaseEvent.objects.get(case=case, kind="verdict_change_decided")
    assert decided.data["from_label"] == "ok" and decided.data["to_label"] == "crack"
    assert decided.data["requested_by"] == "rita" and decided.reason == "the crack is visible"
    changed = CaseEvent.objects.get(case=case, kind="decision_changed")
    assert (changed.data["from_label"], changed.data["label"]) == ("ok", "crack")
    assert changed.actor == admin
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    [row] = verdicts_history(workflow=workflow, reviewer=reviewer)["results"]
    assert (row["label"], row["decision_label"], row["change"]["status"]) == (
        "crack",
        "crack",
        "accepted",
    )


def test_accept_that_breaks_a_consensus_sends_the_case_back_to_review(reviewer, queue_case):
    workflow = factories.workflow_create("pair", consensus_required=2)
    ann = factories.reviewer_create("ann", workflow)
    bob = factories.reviewer_create("bob", workflow)
    boss = factories.reviewer_create("boss", workflow, admin=True)
    case, task = queue_case(workflow)
    verdict_on(workflow, ann)
    second = verdict_on(workflow, bob)
    case.refresh_from_db()
    assert (case.status, case.decision_label) == ("decided", "ok")
    requested(bob, second)
    services.verdict_change_decide(
        admin=boss, verdict_id=second.pk, decision="accept", reason="bob saw a crack"
    )
    case.refresh_from_db()
    task.refresh_from_db()
    assert case.status == CaseStatus.IN_REVIEW
    assert (case.decision_label, case.human_label, case.decided_by) == ("", "", None)
    assert task.status == TaskStatus.OPEN and task.verdicts_required == 3
    back = CaseEvent.objects.filter(case=case, kind="status").order_by("-id").first()
    assert (back.from_status, back.to_status) == ("decided", "in_review")
    # A third reviewer settles it by the same rule as ever.
    cid = factories.reviewer_create("cid", workflow)
    verdict_on(workflow, cid, label="crack")
    case.refresh_from_db()
    assert (case.status, case.decision_label) == ("decided", "crack")


def test_accept_on_an_open_task_replays_the_rule(queue_case):
    workflow = factories.workflow_create("pair", consensus_required=2)
    ann = factories.reviewer_create("ann", workflow)
    bob = factories.reviewer_create("bob", workflow)
    boss = factories.reviewer_create("boss", workflow, admin=True)
    case, task = queue_case(workflow)
    verdict_on(workflow, ann, label="crack")
    second = verdict_on(workflow, bob, label="ok")
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and task.verdicts_required == 3
    requested(bob, second, label="crack")
    services.verdict_change_decide(
        admin=boss, verdict_id=second.pk, decision="accept", reason="agreed after all"
    )
    case.refresh_from_db()
    task.refresh_from_db()
    assert (case.status, case.decision_label, case.decided_by) == ("decided", "crack", boss)
    assert task.status == TaskStatus.DONE


def test_accept_on_an_audit_changes_the_human_label_only(
    workflow, reviewer, admin, queue_case, stub_model_version
):
    case, task = queue_case(workflow, prediction=(stub_model_version, "ok", 0.99))
    ReviewTask.objects.filter(pk=task.pk).update(kind=TaskKind.AUDIT, reason="audit")
    verdict = verdict_on(workflow, reviewer, label="ok")
    case.refresh_from_db()
    assert case.human_label == "ok"
    requested(reviewer, verdict)
    services.verdict_change_decide(
        admin=admin, verdict_id=verdict.pk, decision="accept", reason="crack"
    )
    case.refresh_from_db()
    assert case.human_label == "crack"
    changed = CaseEvent.objects.get(case=case, kind="audit_label_changed")
    assert changed.data["agrees_with_model"] is False


def test_accept_of_a_verdict_changed_since_is_refused(workflow, reviewer, admin, queue_case):
    queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    requested(reviewer, verdict)
    Verdict.objects.filter(pk=verdict.pk).update(label="stain")
    with pytest.raises(errors.CaseMovedOn):
        services.verdict_change_decide(
            admin=admin, verdict_id=verdict.pk, decision="accept", reason="x"
        )
    assert not CaseEvent.objects.filter(kind="verdict_change_decided").exists()


# --- API ------------------------------------------------------------------------------


def test_decide_api(client_for, workflow, reviewer, admin, queue_case):
    queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    url = f"/api/v1/verdicts/{verdict.pk}/change-request/decide/"
    boss = client_for(admin)
    missing = boss.post(url, {"decision": "accept", "reason": "x"}, format="json")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "no_change_requested"
    requested(reviewer, verdict)
    assert boss.post(url, {"decision": "accept"}, format="json").status_code == 400
    bad = boss.post(url, {"decision": "yes", "reason": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "decision"
    assert (
        client_for(reviewer).post(url, {"decision": "accept", "reason": "x"}, format="json")
    ).status_code == 403
    other = factories.workflow_create("other")
    olga = client_for(factories.reviewer_create("olga", other, admin=True))
    assert olga.post(url, {"decision": "accept", "reason": "x"}, format="json").status_code == 404
    done = boss.post(url, {"decision": "accept", "reason": "right"}, format="json")
    assert done.status_code == 200
    body = done.json()
    assert (body["decision"], body["verdict_label"], body["decision_label"]) == (
        "accept",
        "crack",
        "crack",
    )
    assert (body["requested_by"], body["decided_by"], body["case_status"]) == (
        "rita",
        "ada",
        "decided",
    )
    again = boss.post(url, {"decision": "decline", "reason": "x"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "change_already_decided"
    stats = boss.get(f"/api/v1/workflows/{workflow.slug}/review/stats/").json()
    [listed] = stats["change_requests"]
    assert listed["status"] == "accepted" and listed["decision_reason"] == "right"


def test_pages_list_open_requests_and_show_the_outcome(
    client, workflow, reviewer, admin, queue_case
):
    queue_case(workflow)
    verdict = verdict_on(workflow, reviewer)
    requested(reviewer, verdict)
    client.force_login(admin)
    page = client.get(f"/review/{workflow.slug}/reviewers/").content.decode()
    assert f"/api/v1/verdicts/{verdict.pk}/change-request/decide/" in page
    services.verdict_change_decide(
        admin=admin, verdict_id=verdict.pk, decision="decline", reason="looks fine to me"
    )
    page = client.get(f"/review/{workflow.slug}/reviewers/").content.decode()
    assert "No open change requests" in page
    client.force_login(reviewer)
    history = client.get(f"/review/{workflow.slug}/history/").content.decode()
    assert "declined" in history and "looks fine to me" in history
