"""The review services: claiming, leases, verdicts, consensus, audit, gold, skip, undo."""

from datetime import timedelta

import pytest
from django.utils import timezone

from kernel.errors import Forbidden, NotFound
from review import errors, services
from review.models import Assignment, AssignmentState, ReviewTask, TaskKind, TaskStatus, Verdict
from review.selectors import LEASE_MAX_FACTOR
from tests.review import factories
from workflows.models import CaseEvent, CaseStatus, WorkflowMembership

pytestmark = pytest.mark.django_db


def claim(workflow, reviewer, **kwargs):
    assignment = services.review_next(workflow=workflow, reviewer=reviewer, **kwargs)
    assert assignment is not None
    return assignment


# --- Claiming ------------------------------------------------------------------------


def test_claims_the_oldest_task_with_a_lease(workflow, reviewer, queue_case):
    _, first_task = queue_case(workflow)
    queue_case(workflow)
    before = timezone.now()

    assignment = claim(workflow, reviewer)

    assert assignment.task_id == first_task.pk
    assert assignment.state == AssignmentState.ACTIVE
    lease = timedelta(seconds=workflow.review_lease_seconds)
    assert before + lease <= assignment.expires_at <= timezone.now() + lease


def test_empty_queue_gives_none(workflow, reviewer):
    assert services.review_next(workflow=workflow, reviewer=reviewer) is None


def test_a_held_lease_is_returned_instead_of_a_new_one(workflow, reviewer, queue_case):
    for _ in range(3):
        queue_case(workflow)
    first = claim(workflow, reviewer)
    again = claim(workflow, reviewer)
    assert again.pk == first.pk
    assert Assignment.objects.filter(reviewer=reviewer, state="active").count() == 1


def test_prefetch_holds_at_most_one_more(workflow, reviewer, queue_case):
    for _ in range(4):
        queue_case(workflow)
    current = claim(workflow, reviewer)
    prefetched = claim(workflow, reviewer, after_task_id=current.task_id)
    assert prefetched.task_id != current.task_id
    assert claim(workflow, reviewer, after_task_id=current.task_id).pk == prefetched.pk
    assert Assignment.objects.filter(reviewer=reviewer, state="active").count() == 2


def test_two_reviewers_get_different_cases(workflow, reviewer, make_reviewer, queue_case):
    other = make_reviewer("otto", workflow)
    queue_case(workflow)
    queue_case(workflow)
    assert claim(workflow, reviewer).task_id != claim(workflow, other).task_id
    third = make_reviewer("tess", workflow)
    assert services.review_next(workflow=workflow, reviewer=third) is None


def test_an_expired_lease_returns_the_case_to_the_queue(
    workflow, reviewer, make_reviewer, queue_case
):
    _, task = queue_case(workflow)
    walked_away = claim(workflow, reviewer)
    Assignment.objects.filter(pk=walked_away.pk).update(expires_at=timezone.now())

    other = make_reviewer("otto", workflow)
    taken_over = claim(workflow, other)

    assert taken_over.task_id == task.pk
    walked_away.refresh_from_db()
    assert walked_away.state == AssignmentState.EXPIRED


def test_assignments_expire_ends_lapsed_leases(workflow, reviewer, queue_case):
    queue_case(workflow)
    queue_case(workflow)
    lapsed = claim(workflow, reviewer)
    live = claim(workflow, reviewer, after_task_id=lapsed.task_id)
    Assignment.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - timedelta(1))

    assert services.assignments_expire() == 1

    lapsed.refresh_from_db()
    live.refresh_from_db()
    assert lapsed.state == AssignmentState.EXPIRED and lapsed.ended_at is not None
    assert live.state == AssignmentState.ACTIVE


def test_the_celery_task_expires_leases(workflow, reviewer, queue_case):
    from review.tasks import assignments_expire

    queue_case(workflow)
    lapsed = claim(workflow, reviewer)
    Assignment.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - timedelta(1))
    assert assignments_expire.delay().get() == 1


def test_non_members_cannot_claim(workflow, queue_case, make_user):
    stranger = make_user("stranger")
    queue_case(workflow)
    with pytest.raises(NotFound):
        services.review_next(workflow=workflow, reviewer=stranger)


def test_members_without_the_review_right_are_refused(workflow, queue_case, make_user):
    submitter = make_user("camera")
    WorkflowMembership.objects.create(user=submitter, workflow=workflow, can_submit=True)
    queue_case(workflow)
    with pytest.raises(Forbidden):
        services.review_next(workflow=workflow, reviewer=submitter)


# --- Verdicts ------------------------------------------------------------------------


def test_a_verdict_decides_the_case(workflow, reviewer, queue_case):
    case, task = queue_case(workflow)
    assignment = claim(workflow, reviewer)

    verdict = services.verdict_submit(
        task_id=task.pk, reviewer=reviewer, label="crack", comment=" hairline "
    )

    case.refresh_from_db()
    task.refresh_from_db()
    assignment.refresh_from_db()
    assert verdict.comment == "hairline"
    assert case.status == CaseStatus.DECIDED
    assert case.decision_label == "crack" and case.decision_source == "human"
    assert case.decision_confidence is None and case.decision_model_version is None
    assert case.decided_by == reviewer and case.decided_at is not None
    assert case.human_label == "crack" and case.labelled_at is not None
    assert task.status == TaskStatus.DONE and task.closed_at is not None
    assert assignment.state == AssignmentState.COMPLETED
    event = CaseEvent.objects.filter(case=case, to_status="decided").get()
    assert event.actor == reviewer and event.actor_type == "user"
    assert event.data["label"] == "crack"


def test_the_verdict_records_whether_the_human_overrode_the_model(
    workflow, reviewer, queue_case, stub_model_version
):
    case, task = queue_case(workflow, prediction=(stub_model_version, "ok", 0.7))
    claim(workflow, reviewer)
    services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="stain")
    event = CaseEvent.objects.filter(case=case, to_status="decided").get()
    assert event.data["model_label"] == "ok"
    assert event.data["human_overrode_model"] is True


def test_unknown_label_is_refused_naming_the_allowed_ones(workflow, reviewer, queue_case):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    with pytest.raises(errors.UnknownLabel) as refusal:
        services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="dent")
    assert "ok, scratch, crack, stain" in refusal.value.message
    assert refusal.value.status_code == 400
    assert not Verdict.objects.exists()


def test_a_task_not_assigned_to_you_is_refused(workflow, reviewer, make_reviewer, queue_case):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    other = make_reviewer("otto", workflow)
    with pytest.raises(errors.NotAssigned) as refusal:
        services.verdict_submit(task_id=task.pk, reviewer=other, label="ok")
    assert refusal.value.status_code == 409
    assert not Verdict.objects.exists()


def test_a_lapsed_lease_still_takes_the_verdict_when_nobody_else_holds_it(
    workflow, reviewer, queue_case
):
    case, task = queue_case(workflow)
    assignment = claim(workflow, reviewer)
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now())
    services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    case.refresh_from_db()
    assert case.decision_label == "ok"


def test_a_lease_marked_expired_still_takes_the_verdict_when_nobody_else_holds_it(
    workflow, reviewer, queue_case
):
    case, task = queue_case(workflow)
    assignment = claim(workflow, reviewer)
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now())
    assert services.assignments_expire() == 1
    verdict = services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="crack")
    assignment.refresh_from_db()
    assert verdict.assignment_id == assignment.pk and assignment.state == AssignmentState.COMPLETED
    case.refresh_from_db()
    assert case.decision_label == "crack"


def test_a_lapsed_lease_is_refused_once_another_reviewer_holds_the_case(
    workflow, reviewer, make_reviewer, queue_case
):
    case, task = queue_case(workflow)
    assignment = claim(workflow, reviewer)
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now())
    other = make_reviewer("otto", workflow)
    assert claim(workflow, other).task_id == task.pk
    with pytest.raises(errors.LeaseExpired) as refusal:
        services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    assert refusal.value.status_code == 410
    with pytest.raises(errors.LeaseExpired):
        services.assignment_heartbeat(task_id=task.pk, reviewer=reviewer)
    case.refresh_from_db()
    assert case.status == CaseStatus.IN_REVIEW and not Verdict.objects.exists()
    services.verdict_submit(task_id=task.pk, reviewer=other, label="stain")


def test_next_renews_a_held_lease_about_to_run_out(workflow, reviewer, queue_case):
    queue_case(workflow)
    assignment = claim(workflow, reviewer)
    soon = timezone.now() + timedelta(seconds=2)
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=soon)
    again = claim(workflow, reviewer)
    assert again.pk == assignment.pk
    again.refresh_from_db()
    assert again.expires_at >= soon + timedelta(seconds=workflow.review_lease_seconds - 3)


def test_heartbeat_renews_but_never_past_the_limit(workflow, reviewer, queue_case):
    _, task = queue_case(workflow)
    assignment = claim(workflow, reviewer)
    lease = workflow.review_lease_seconds
    taken = timezone.now() - timedelta(seconds=lease * LEASE_MAX_FACTOR - 10)
    Assignment.objects.filter(pk=assignment.pk).update(
        leased_at=taken, expires_at=timezone.now() + timedelta(seconds=1)
    )
    renewed = services.assignment_heartbeat(task_id=task.pk, reviewer=reviewer)
    limit = taken + timedelta(seconds=lease * LEASE_MAX_FACTOR)
    assert renewed.expires_at == limit


def test_a_decided_case_is_refused(workflow, reviewer, queue_case):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    with pytest.raises(errors.CaseAlreadyDecided) as refusal:
        services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="crack")
    assert refusal.value.status_code == 409
    assert Verdict.objects.count() == 1


def test_another_workflows_reviewer_gets_not_found(workflow, reviewer, queue_case):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    elsewhere = factories.workflow_create("elsewhere")
    outsider = factories.reviewer_create("olga", elsewhere)
    with pytest.raises(NotFound):
        services.verdict_submit(task_id=task.pk, reviewer=outsider, label="ok")
    with pytest.raises(NotFound):
        services.verdict_submit(task_id=999_999, reviewer=outsider, label="ok")


# --- Consensus -----------------------------------------------------------------------


@pytest.fixture
def consensus_workflow(db):
    return factories.workflow_create("pairs", consensus_required=2)


def test_two_agreeing_reviewers_decide(consensus_workflow, make_reviewer, queue_case):
    case, task = queue_case(consensus_workflow)
    first, second = (
        make_reviewer("ann", consensus_workflow),
        make_reviewer("bob", consensus_workflow),
    )

    claim(consensus_workflow, first)
    services.verdict_submit(task_id=task.pk, reviewer=first, label="scratch")
    case.refresh_from_db()
    assert case.status == CaseStatus.IN_REVIEW
    assert services.review_next(workflow=consensus_workflow, reviewer=first) is None

    assert claim(consensus_workflow, second).task_id == task.pk
    services.verdict_submit(task_id=task.pk, reviewer=second, label="scratch")
    case.refresh_from_db()
    task.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.decision_label == "scratch"
    assert case.decided_by == second
    assert task.status == TaskStatus.DONE and task.verdicts.count() == 2


def test_disagreement_brings_one_more_reviewer_then_an_adjudicator(
    consensus_workflow, make_reviewer, queue_case
):
    case, task = queue_case(consensus_workflow)
    ann, bob, cid = (make_reviewer(n, consensus_workflow) for n in ("ann", "bob", "cid"))
    admin = make_reviewer("ada", consensus_workflow, admin=True)
    for reviewer, label in ((ann, "ok"), (bob, "crack")):
        claim(consensus_workflow, reviewer)
        services.verdict_submit(task_id=task.pk, reviewer=reviewer, label=label)
    task.refresh_from_db()
    assert task.verdicts_required == 3 and not task.needs_adjudication

    claim(consensus_workflow, cid)
    services.verdict_submit(task_id=task.pk, reviewer=cid, label="stain")
    task.refresh_from_db()
    case.refresh_from_db()
    assert task.needs_adjudication and task.status == TaskStatus.OPEN
    assert case.status == CaseStatus.IN_REVIEW
    dave = make_reviewer("dave", consensus_workflow)
    assert services.review_next(workflow=consensus_workflow, reviewer=dave) is None

    queue_case(consensus_workflow)
    adjudication = claim(consensus_workflow, admin)
    assert adjudication.task_id == task.pk
    services.verdict_submit(task_id=task.pk, reviewer=admin, label="crack")
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.decision_label == "crack"
    event = CaseEvent.objects.filter(case=case, to_status="decided").get()
    assert event.data["adjudicated"] is True
    assert [v["label"] for v in event.data["verdicts"]] == ["ok", "crack", "stain", "crack"]


def test_the_third_reviewer_can_settle_a_disagreement(
    consensus_workflow, make_reviewer, queue_case
):
    case, task = queue_case(consensus_workflow)
    for name, label in (("ann", "ok"), ("bob", "crack"), ("cid", "crack")):
        reviewer = make_reviewer(name, consensus_workflow)
        claim(consensus_workflow, reviewer)
        services.verdict_submit(task_id=task.pk, reviewer=reviewer, label=label)
    case.refresh_from_db()
    assert case.decision_label == "crack" and case.status == CaseStatus.DECIDED


# --- Audit and gold ------------------------------------------------------------------


def test_an_audit_verdict_labels_without_changing_the_models_decision(
    workflow, reviewer, queue_case, stub_model_version, django_capture_on_commit_callbacks
):
    case, task = queue_case(workflow, prediction=(stub_model_version, "ok", 0.99))
    ReviewTask.objects.filter(pk=task.pk).update(kind=TaskKind.AUDIT, reason="audit")
    decided_at = timezone.now()
    type(case).objects.filter(pk=case.pk).update(
        status=CaseStatus.DECIDED,
        decision_label="ok",
        decision_source="model",
        decision_confidence=0.99,
        decision_model_version=stub_model_version,
        decided_at=decided_at,
    )
    claim(workflow, reviewer)
    with django_capture_on_commit_callbacks() as queued:
        services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="crack")

    # Cache fills of rows read in the transaction (kernel.readcache) are queued too.
    checks = [callback for callback in queued if callback.__module__ != "kernel.readcache"]
    assert len(checks) == 1, "the automation checks are queued after an audit verdict"
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED
    assert case.decision_label == "ok" and case.decision_source == "model"
    assert case.human_label == "crack" and case.labelled_at is not None
    event = CaseEvent.objects.get(case=case, kind="audit_label")
    assert event.data["agrees_with_model"] is False


@pytest.fixture
def gold_case(workflow):
    case, task = factories.case_in_review(workflow)
    task.delete()
    type(case).objects.filter(pk=case.pk).update(
        status=CaseStatus.DECIDED, is_gold=True, gold_label="scratch"
    )
    case.refresh_from_db()
    return case


def test_gold_cases_are_slipped_in_per_reviewer_and_decide_nothing(
    workflow, reviewer, make_reviewer, gold_case, queue_case
):
    from review.selectors import gold_accuracy, review_task_payload

    workflow.gold_rate = 1.0
    workflow.save()
    queue_case(workflow)

    assignment = claim(workflow, reviewer)
    task = assignment.task
    assert task.kind == TaskKind.GOLD and task.case_id == gold_case.pk
    assert task.for_reviewer == reviewer
    assert task.reason == "human_only"
    payload = review_task_payload(assignment=assignment)
    assert "gold" not in str(payload)

    services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    gold_case.refresh_from_db()
    assert gold_case.human_label == "" and gold_case.decided_by is None

    following = claim(workflow, reviewer)
    assert following.task.kind == TaskKind.REVIEW

    other = make_reviewer("otto", workflow)
    assert claim(workflow, other).task.case_id == gold_case.pk
    services.verdict_submit(task_id=claim(workflow, other).task_id, reviewer=other, label="scratch")

    report = {row["reviewer"]: row for row in gold_accuracy(workflow=workflow)}
    assert report["rita"]["accuracy"] == 0.0 and report["rita"]["n"] == 1
    assert report["otto"]["accuracy"] == 1.0 and report["otto"]["correct"] == 1


def test_another_reviewers_gold_task_is_not_found(workflow, reviewer, make_reviewer, gold_case):
    workflow.gold_rate = 1.0
    workflow.save()
    task = claim(workflow, reviewer).task
    other = make_reviewer("otto", workflow)
    with pytest.raises(NotFound):
        services.verdict_submit(task_id=task.pk, reviewer=other, label="ok")


def test_a_lapsed_gold_lease_cancels_its_task(workflow, reviewer, gold_case):
    workflow.gold_rate = 1.0
    workflow.save()
    assignment = claim(workflow, reviewer)
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now())
    services.assignments_expire()
    assignment.task.refresh_from_db()
    assert assignment.task.status == TaskStatus.CANCELLED
    assert services.review_next(workflow=workflow, reviewer=reviewer) is None


# --- Skip and release ----------------------------------------------------------------


def test_skip_needs_a_reason_and_passes_the_case_to_others_after_the_delay(
    workflow, reviewer, make_reviewer, queue_case
):
    case, task = queue_case(workflow)
    claim(workflow, reviewer)
    with pytest.raises(services.InvalidInput):
        services.verdict_skip(task_id=task.pk, reviewer=reviewer, reason="  ")

    skipped = services.verdict_skip(task_id=task.pk, reviewer=reviewer, reason="blurry")

    assert skipped.state == AssignmentState.SKIPPED and skipped.skip_reason == "blurry"
    other = make_reviewer("otto", workflow)
    # Nobody gets it during the delay...
    assert services.review_next(workflow=workflow, reviewer=reviewer) is None
    assert services.review_next(workflow=workflow, reviewer=other) is None
    # ...then others first, and the one who skipped it only when nothing else waits.
    ReviewTask.objects.filter(pk=task.pk).update(available_at=timezone.now())
    _, fresh = queue_case(workflow)
    assert claim(workflow, reviewer).task_id == fresh.pk
    assert claim(workflow, other).task_id == task.pk
    assert CaseEvent.objects.filter(case=case, kind="review_skipped", reason="blurry").exists()


def test_the_skipper_gets_the_case_back_when_nothing_else_waits(workflow, reviewer, queue_case):
    workflow.skip_delay_seconds = 0
    workflow.save()
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    services.verdict_skip(task_id=task.pk, reviewer=reviewer, reason="blurry")
    assert claim(workflow, reviewer).task_id == task.pk


def test_too_many_skips_send_the_case_to_the_admins(workflow, reviewer, make_reviewer, queue_case):
    workflow.skip_delay_seconds = 0
    workflow.max_skips = 2
    workflow.save()
    case, task = queue_case(workflow)
    other = make_reviewer("otto", workflow)
    for who in (reviewer, other):
        assert claim(workflow, who).task_id == task.pk
        services.verdict_skip(task_id=task.pk, reviewer=who, reason="no idea")
    task.refresh_from_db()
    assert task.escalated and task.skip_count == 2
    assert CaseEvent.objects.filter(case=case, kind="review_escalated").exists()
    assert services.review_next(workflow=workflow, reviewer=reviewer) is None
    admin = make_reviewer("ada", workflow, admin=True)
    assert claim(workflow, admin).task_id == task.pk


def test_hidden_suggestion_is_drawn_at_task_creation_and_recorded(
    workflow, queue_case, stub_model_version, monkeypatch
):
    workflow.level = "assistance"
    workflow.hidden_suggestion_rate = 0.5
    workflow.save()
    monkeypatch.setattr(services, "hidden_suggestion_draw", lambda: 0.2)
    case, task = queue_case(workflow, prediction=(stub_model_version, "crack", 0.9))
    assert task.suggestion_hidden and not task.show_suggestion
    case.refresh_from_db()
    assert not case.suggestion_visible
    monkeypatch.setattr(services, "hidden_suggestion_draw", lambda: 0.7)
    _, shown = queue_case(workflow, prediction=(stub_model_version, "crack", 0.9))
    assert shown.show_suggestion and not shown.suggestion_hidden


def test_model_agreement_shown_versus_hidden(
    workflow, reviewer, queue_case, stub_model_version, monkeypatch
):
    from review.selectors import model_agreement_stats

    workflow.level = "assistance"
    workflow.hidden_suggestion_rate = 0.5
    workflow.save()
    for draw, label in ((0.9, "crack"), (0.9, "crack"), (0.1, "ok"), (0.1, "crack")):
        monkeypatch.setattr(services, "hidden_suggestion_draw", lambda draw=draw: draw)
        _, task = queue_case(workflow, prediction=(stub_model_version, "crack", 0.9))
        assert claim(workflow, reviewer).task_id == task.pk
        services.verdict_submit(task_id=task.pk, reviewer=reviewer, label=label)
    [row] = model_agreement_stats(workflow=workflow)
    assert (row["shown_n"], row["shown_agreement"]) == (2, 1.0)
    assert (row["hidden_n"], row["hidden_agreement"]) == (2, 0.5)
    assert row["gap"] == 0.5


def test_skipping_without_a_lease_is_refused(workflow, reviewer, queue_case):
    _, task = queue_case(workflow)
    with pytest.raises(errors.NotAssigned):
        services.verdict_skip(task_id=task.pk, reviewer=reviewer, reason="blurry")


def test_release_puts_the_case_back_for_everyone(workflow, reviewer, queue_case):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    assert services.assignment_release(task_id=task.pk, reviewer=reviewer) is True
    assert services.assignment_release(task_id=task.pk, reviewer=reviewer) is False
    assert claim(workflow, reviewer).task_id == task.pk


# --- Undo ----------------------------------------------------------------------------


def test_undo_reopens_the_case_and_hands_it_back(workflow, reviewer, queue_case):
    case, task = queue_case(workflow)
    claim(workflow, reviewer)
    verdict = services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")

    result = services.verdict_undo(reviewer=reviewer, verdict_id=verdict.pk)

    case.refresh_from_db()
    task.refresh_from_db()
    assert result.verdict.retracted_at is not None
    assert result.assignment is not None and result.assignment.task_id == task.pk
    assert case.status == CaseStatus.IN_REVIEW
    assert case.decision_label == "" and case.decision_source == "" and case.decided_by is None
    assert case.human_label == "" and case.labelled_at is None
    assert task.status == TaskStatus.OPEN
    services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="stain")
    case.refresh_from_db()
    assert case.decision_label == "stain"
    assert list(case.events.values_list("to_status", flat=True))[-2:] == ["in_review", "decided"]


def test_undo_only_the_last_verdict(workflow, reviewer, queue_case):
    _, first_task = queue_case(workflow)
    _, second_task = queue_case(workflow)
    claim(workflow, reviewer)
    first = services.verdict_submit(task_id=first_task.pk, reviewer=reviewer, label="ok")
    claim(workflow, reviewer)
    services.verdict_submit(task_id=second_task.pk, reviewer=reviewer, label="ok")
    with pytest.raises(errors.NotLastVerdict) as refusal:
        services.verdict_undo(reviewer=reviewer, verdict_id=first.pk)
    assert refusal.value.status_code == 409


def test_undo_after_the_window_is_gone(workflow, reviewer, queue_case, settings):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    verdict = services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    Verdict.objects.filter(pk=verdict.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.LOOPGATE_UNDO_WINDOW_SECONDS + 1)
    )
    with pytest.raises(errors.UndoWindowPassed) as refusal:
        services.verdict_undo(reviewer=reviewer, verdict_id=verdict.pk)
    assert refusal.value.status_code == 410


def test_undo_twice_or_someone_elses_verdict_is_refused(
    workflow, reviewer, make_reviewer, queue_case
):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    verdict = services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    other = make_reviewer("otto", workflow)
    with pytest.raises(NotFound):
        services.verdict_undo(reviewer=other, verdict_id=verdict.pk)
    services.verdict_undo(reviewer=reviewer, verdict_id=verdict.pk)
    with pytest.raises(errors.AlreadyUndone):
        services.verdict_undo(reviewer=reviewer, verdict_id=verdict.pk)


def test_undo_after_another_reviewer_decided_is_refused(
    consensus_workflow, make_reviewer, queue_case
):
    case, task = queue_case(consensus_workflow)
    ann, bob = make_reviewer("ann", consensus_workflow), make_reviewer("bob", consensus_workflow)
    claim(consensus_workflow, ann)
    first = services.verdict_submit(task_id=task.pk, reviewer=ann, label="ok")
    claim(consensus_workflow, bob)
    services.verdict_submit(task_id=task.pk, reviewer=bob, label="ok")

    with pytest.raises(errors.CaseMovedOn) as refusal:
        services.verdict_undo(reviewer=ann, verdict_id=first.pk)
    assert refusal.value.status_code == 409
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.decided_by == bob


def test_undoing_a_disagreement_restores_the_consensus_state(
    consensus_workflow, make_reviewer, queue_case
):
    _, task = queue_case(consensus_workflow)
    ann, bob = make_reviewer("ann", consensus_workflow), make_reviewer("bob", consensus_workflow)
    claim(consensus_workflow, ann)
    services.verdict_submit(task_id=task.pk, reviewer=ann, label="ok")
    claim(consensus_workflow, bob)
    second = services.verdict_submit(task_id=task.pk, reviewer=bob, label="crack")
    task.refresh_from_db()
    assert task.verdicts_required == 3

    services.verdict_undo(reviewer=bob, verdict_id=second.pk)
    task.refresh_from_db()
    assert task.verdicts_required == 2
    services.verdict_submit(task_id=task.pk, reviewer=bob, label="ok")
    task.case.refresh_from_db()
    assert task.case.decision_label == "ok"


def test_undo_while_someone_else_holds_the_case_leaves_it_in_the_queue(
    consensus_workflow, make_reviewer, queue_case
):
    _, task = queue_case(consensus_workflow)
    ann, bob = make_reviewer("ann", consensus_workflow), make_reviewer("bob", consensus_workflow)
    claim(consensus_workflow, ann)
    first = services.verdict_submit(task_id=task.pk, reviewer=ann, label="ok")
    claim(consensus_workflow, bob)

    result = services.verdict_undo(reviewer=ann, verdict_id=first.pk)
    assert result.assignment is None
    assert result.verdict.retracted_at is not None


# --- Asking to change an older verdict --------------------------------------------------


def test_a_change_request_is_recorded_on_the_case_once(workflow, reviewer, queue_case):
    from review.selectors import change_requests

    case, task = queue_case(workflow)
    claim(workflow, reviewer)
    verdict = services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    with pytest.raises(services.InvalidInput):
        services.verdict_change_request(
            reviewer=reviewer, verdict_id=verdict.pk, label="ok", reason="same"
        )
    with pytest.raises(services.InvalidInput):
        services.verdict_change_request(
            reviewer=reviewer, verdict_id=verdict.pk, label="crack", reason=" "
        )
    with pytest.raises(errors.UnknownLabel):
        services.verdict_change_request(
            reviewer=reviewer, verdict_id=verdict.pk, label="dent", reason="x"
        )
    event = services.verdict_change_request(
        reviewer=reviewer, verdict_id=verdict.pk, label="crack", reason="missed the crack"
    )
    assert event.kind == "verdict_change_requested" and event.case_id == case.pk
    assert event.data == {
        "verdict": verdict.pk,
        "task": task.pk,
        "from_label": "ok",
        "to_label": "crack",
    }
    with pytest.raises(errors.ChangeAlreadyRequested):
        services.verdict_change_request(
            reviewer=reviewer, verdict_id=verdict.pk, label="stain", reason="again"
        )
    [request] = change_requests(workflow=workflow)
    assert (request["reviewer"], request["to_label"]) == ("rita", "crack")
    # The verdict and the decision stand until an admin acts.
    case.refresh_from_db()
    assert case.decision_label == "ok"


def test_only_the_author_may_ask_to_change_a_verdict(workflow, reviewer, make_reviewer, queue_case):
    _, task = queue_case(workflow)
    claim(workflow, reviewer)
    verdict = services.verdict_submit(task_id=task.pk, reviewer=reviewer, label="ok")
    other = make_reviewer("otto", workflow)
    with pytest.raises(NotFound):
        services.verdict_change_request(
            reviewer=other, verdict_id=verdict.pk, label="crack", reason="mine now"
        )
