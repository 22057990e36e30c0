"""The review claim's one statement (review.claiming): which task it picks, and that it
reads a handful of rows however many tasks wait and whatever the statistics say."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from review.claiming import claim_sql
from review.models import ReviewTask
from review.services import review_next
from tests.conftest import require_postgres
from tests.review import factories
from workflows.models import Case

pytestmark = pytest.mark.django_db


def deadline_in(cases: list[Case], minutes: list[int]) -> None:
    now = timezone.now()
    for case, after in zip(cases, minutes, strict=True):
        Case.objects.filter(pk=case.pk).update(deadline_at=now + timedelta(minutes=after))


def task_of(case: Case) -> int:
    return ReviewTask.objects.get(case=case, status="open").pk


def rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows of ``table`` the plan's scans returned or filtered away, over all loops."""
    read = 0
    if plan.get("Relation Name") == table:
        loops = plan.get("Actual Loops", 1)
        read += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    for child in plan.get("Plans", []):
        read += rows_read(child, table)
    return read


def explain(sql: str, params: list[Any]) -> tuple[dict[str, Any], int | None]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        raw = cursor.fetchone()[0]
        cursor.execute(sql, params)
        picked = cursor.fetchone()
        transaction.set_rollback(True)
    plan = raw if isinstance(raw, list) else json.loads(raw)
    return plan[0]["Plan"], picked[0] if picked else None


def test_the_nearest_pending_deadline_of_this_workflow_comes_first() -> None:
    workflow = factories.workflow_create("line")
    other = factories.workflow_create("other")
    rita = factories.reviewer_create("rita", workflow)
    factories.reviewer_create("rita-too", other)
    mine = factories.cases_in_review_bulk(workflow, 6)
    theirs = factories.cases_in_review_bulk(other, 3)
    # The other workflow's deadlines are nearer; they are not this queue's.
    deadline_in(theirs, [1, 2, 3])
    deadline_in(mine[3:], [30, 10, 20])
    handed = []
    for _ in range(4):
        assignment = review_next(workflow=workflow, reviewer=rita, after_task_id=None)
        handed.append(assignment.task.case_id)
        assignment.state = "released"
        assignment.save(update_fields=["state"])
        ReviewTask.objects.filter(pk=assignment.task_id).update(status="cancelled")
    assert handed == [mine[4].pk, mine[5].pk, mine[3].pk, mine[0].pk]


def test_a_passed_fallback_waits_in_arrival_order() -> None:
    workflow = factories.workflow_create("line")
    rita = factories.reviewer_create("rita", workflow)
    cases = factories.cases_in_review_bulk(workflow, 3)
    deadline_in(cases[2:], [-5])
    Case.objects.filter(pk=cases[2].pk).update(deadline_fallback_at=timezone.now())
    assert review_next(workflow=workflow, reviewer=rita).task.case_id == cases[0].pk


@pytest.mark.parametrize("deadlines", [0, 5])
def test_the_claim_reads_a_handful_of_rows_without_statistics(deadlines: int) -> None:
    """1,500 waiting tasks, tables never analysed: the claim still walks its indexes in
    order and reads a few rows, never every open task (35 ms per claim once, D135), nor
    the decided cases that once had a deadline, nor another workflow's deadlines."""
    require_postgres()
    workflow = factories.workflow_create("line")
    rita = factories.reviewer_create("rita", workflow)
    decided = factories.cases_in_review_bulk(workflow, 600)
    deadline_in(decided, [-1] * len(decided))  # nearer than any pending one below
    Case.objects.filter(pk__in=[c.pk for c in decided]).update(status="decided")
    ReviewTask.objects.filter(case__in=decided).update(status="done")
    cases = factories.cases_in_review_bulk(workflow, 1500)
    deadline_in(cases[-deadlines:] if deadlines else [], [50, 40, 30, 20, 10][:deadlines])
    other = factories.workflow_create("other")
    deadline_in(factories.cases_in_review_bulk(other, 300), list(range(1, 301)))
    sql, params = claim_sql(workflow=workflow, reviewer=rita, now=timezone.now())
    plan, picked = explain(sql, params)
    expected = cases[-1] if deadlines else cases[0]
    assert picked == task_of(expected)
    assert rows_read(plan, ReviewTask._meta.db_table) <= 10, json.dumps(plan, indent=1)
    assert rows_read(plan, Case._meta.db_table) <= 10, json.dumps(plan, indent=1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_deadline", [False, True])
def test_a_claim_locks_only_the_task_it_hands_out(same_deadline: bool) -> None:
    """Two reviewers claiming at once, two tasks due: each gets one. The claim that goes
    first holds its lock until it commits, and must hold it on its own task alone (a lock
    on every row the deadline sort reads would leave the other reviewer with nothing)."""
    require_postgres()
    import psycopg

    workflow = factories.workflow_create("line")
    rita = factories.reviewer_create("rita", workflow)
    sam = factories.reviewer_create("sam", workflow)
    cases = factories.cases_in_review_bulk(workflow, 2)
    deadline_in(cases, [10, 10] if same_deadline else [10, 20])
    now = timezone.now()
    first_sql, first_params = claim_sql(workflow=workflow, reviewer=rita, now=now)
    second_sql, second_params = claim_sql(workflow=workflow, reviewer=sam, now=now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(first_sql, first_params)
        [(first,)] = cursor.fetchall()
        # Another session, while this transaction holds its lock.
        other = connection.get_connection_params()
        other.pop("cursor_factory", None)
        with psycopg.connect(**other, autocommit=False) as session:
            with session.cursor(row_factory=psycopg.rows.tuple_row) as other_cursor:
                other_cursor.execute(
                    psycopg.ClientCursor(session).mogrify(second_sql, second_params)
                )
                second = other_cursor.fetchall()
            session.rollback()
    assert {first, *(row[0] for row in second)} == {task_of(case) for case in cases}
