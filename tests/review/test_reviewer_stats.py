"""Reviewer statistics over time: the selector's figures against hand-counted ones, and
the page's access rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from decisions.stats import cohen_kappa
from review.models import Assignment, AssignmentState, ReviewTask, TaskKind, Verdict
from review.selectors import reviewer_activity
from tests.review import factories
from workflows.models import CaseStatus

pytestmark = pytest.mark.django_db

# A Wednesday, so that "yesterday" is in the same week.
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def verdict(task: ReviewTask, user: Any, label: str, at: datetime, *, seconds: float = 10) -> Any:
    """A verdict given at ``at`` on a lease taken ``seconds`` before."""
    assignment = Assignment.objects.create(
        task=task, reviewer=user, state=AssignmentState.COMPLETED, expires_at=at, ended_at=at
    )
    Assignment.objects.filter(pk=assignment.pk).update(leased_at=at - timedelta(seconds=seconds))
    made = Verdict.objects.create(
        task=task, case=task.case, assignment=assignment, reviewer=user, label=label
    )
    Verdict.objects.filter(pk=made.pk).update(created_at=at)
    return made


def skip(task: ReviewTask, user: Any, at: datetime) -> None:
    Assignment.objects.create(
        task=task, reviewer=user, state=AssignmentState.SKIPPED, expires_at=at, ended_at=at
    )


@pytest.fixture
def team(make_user: Any) -> dict[str, Any]:
    workflow = factories.workflow_create("line", consensus_required=2)
    ann = factories.reviewer_create("ann", workflow)
    bob = factories.reviewer_create("bob", workflow)
    idle = factories.reviewer_create("cid", workflow)
    boss = factories.reviewer_create("boss", workflow, admin=True)
    today, yesterday = NOW - timedelta(hours=2), NOW - timedelta(days=1)
    pairs = [("crack", "crack"), ("scratch", "scratch"), ("crack", "dent")]
    for ann_label, bob_label in pairs:
        _, task = factories.case_in_review(workflow)
        verdict(task, ann, ann_label, today, seconds=20)
        verdict(task, bob, bob_label, today, seconds=40)
    _, alone = factories.case_in_review(workflow)
    verdict(alone, ann, "ok", yesterday, seconds=50)
    _, undone_task = factories.case_in_review(workflow)
    undone = verdict(undone_task, ann, "dent", today)
    Verdict.objects.filter(pk=undone.pk).update(retracted_at=today)
    _, skipped = factories.case_in_review(workflow)
    skip(skipped, bob, today)
    gold, gold_task = factories.case_in_review(workflow)
    type(gold).objects.filter(pk=gold.pk).update(
        status=CaseStatus.DECIDED, is_gold=True, gold_label="scratch"
    )
    ReviewTask.objects.filter(pk=gold_task.pk).update(kind=TaskKind.GOLD)
    gold_task.refresh_from_db()
    verdict(gold_task, ann, "scratch", today, seconds=20)
    verdict(gold_task, bob, "crack", today, seconds=40)
    old_task = factories.case_in_review(workflow)[1]
    verdict(old_task, ann, "ok", NOW - timedelta(days=40))
    return {"workflow": workflow, "ann": ann, "bob": bob, "idle": idle, "boss": boss}


def by_name(report: Any) -> dict[str, Any]:
    return {row.reviewer: row for row in report.reviewers}


def test_figures_per_reviewer_over_the_window(team: dict[str, Any]) -> None:
    report = reviewer_activity(workflow=team["workflow"], period="day", now=NOW)
    rows = by_name(report)
    assert sorted(rows) == ["ann", "bob", "boss", "cid"], "idle reviewers are listed too"
    ann, bob = rows["ann"].total, rows["bob"].total
    # 3 paired + 1 alone + 1 gold; the undone one and the one 40 days ago do not count.
    assert (ann.verdicts, bob.verdicts) == (5, 4)
    assert (ann.skips, bob.skips) == (0, 1)
    assert bob.skip_rate == pytest.approx(1 / 5)
    assert ann.agreement_pairs == 3 and ann.agreement == pytest.approx(2 / 3)
    expected = cohen_kappa(["crack", "scratch", "crack"], ["crack", "scratch", "dent"])
    assert ann.kappa == pytest.approx(expected)
    mirrored = cohen_kappa(["crack", "scratch", "dent"], ["crack", "scratch", "crack"])
    assert bob.kappa == pytest.approx(mirrored)
    assert (ann.gold_correct, ann.gold_n, bob.gold_correct, bob.gold_n) == (1, 1, 0, 1)
    low, high = rows["ann"].gold_interval
    assert 0 < low < 1 and high == pytest.approx(1.0)
    assert ann.seconds_per_verdict == pytest.approx((20 * 4 + 50) / 5)
    idle = rows["cid"].total
    assert idle.verdicts == 0 and idle.kappa is None and idle.skip_rate is None


def test_periods_split_the_work_by_day_and_by_week(team: dict[str, Any]) -> None:
    daily = by_name(reviewer_activity(workflow=team["workflow"], period="day", now=NOW))
    assert len(daily["ann"].periods) == 14
    (today, first), (yesterday, second) = daily["ann"].periods[:2]
    assert today == NOW.date() and yesterday == NOW.date() - timedelta(days=1)
    assert (first.verdicts, second.verdicts) == (4, 1)
    assert second.agreement_pairs == 0 and second.kappa is None
    assert sum(f.verdicts for _, f in daily["ann"].periods[2:]) == 0
    weekly = reviewer_activity(workflow=team["workflow"], period="week", now=NOW)
    assert len(weekly.starts) == 12 and weekly.starts[0].weekday() == 0
    week, figures = by_name(weekly)["ann"].periods[0]
    assert week == datetime(2026, 11, 23).date() and figures.verdicts == 5


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown period"):
        reviewer_activity(workflow=None, period="month")  # type: ignore[arg-type]


def test_only_workflow_admins_open_the_page(team: dict[str, Any], make_user: Any) -> None:
    client = Client()
    assert client.get("/review/line/reviewers/").status_code == 302
    client.force_login(team["ann"])
    assert client.get("/review/line/reviewers/").status_code == 403
    client.force_login(make_user("olga"))
    assert client.get("/review/line/reviewers/").status_code == 404
    client.force_login(team["boss"])
    response = client.get("/review/line/reviewers/?period=week")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Reviewers of Line" in html and 'data-reviewer="bob"' in html
    assert 'aria-current="page">Per week' in html
    bad = client.get("/review/line/reviewers/?period=month")
    assert bad.status_code == 400 and "Unknown period" in bad.content.decode()
