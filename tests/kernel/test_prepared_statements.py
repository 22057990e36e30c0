"""Server-side binding and prepared statements on PostgreSQL (D151): a statement that a
connection runs for the fifth time is prepared and no longer planned on each run; the
near-copy lookup, whose best plan follows the table's size, never is; and
``DATABASE_PREPARE_THRESHOLD`` sets the count or turns preparing off."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from kernel.postgresql.base import unprepared
from loopgate.settings import env_prepare_threshold
from tests.conftest import require_postgres
from workflows.models import Case
from workflows.services import _DUPLICATE_SQL, case_duplicate_root, duplicate_lookup_parameters

pytestmark = [pytest.mark.django_db]

PHASH = "0123456789abcdef"


def _prepared(*markers: str) -> list[tuple[str, int]]:
    """This connection's prepared statements that contain every marker, with how many
    times each was planned (custom plans) and run on a generic one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, custom_plans, generic_plans FROM pg_prepared_statements"
            " WHERE statement NOT LIKE '%%pg_prepared_statements%%'"
        )
        rows = cursor.fetchall()
    return [
        (statement, custom + generic)
        for statement, custom, generic in rows
        if all(marker in statement for marker in markers)
    ]


def test_the_settings_bind_on_the_server_and_prepare_at_the_fifth_run() -> None:
    require_postgres()
    options = connection.settings_dict["OPTIONS"]
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5
    assert connection.connection.prepare_threshold == 5


def test_a_statement_run_five_times_is_prepared_and_run_again_unplanned(
    make_workflow: Any,
) -> None:
    require_postgres()
    workflow = make_workflow("prepared")
    # A shape no other test runs: this connection may have prepared theirs.
    query = Case.objects.filter(workflow=workflow, status="decided").values_list(
        "requeued_at", "deadline_fallback_at"
    )
    marker = ('"requeued_at"', '"deadline_fallback_at"')
    for _ in range(4):
        list(query[:3])
    assert _prepared(*marker) == []
    for _ in range(4):
        list(query[:3])
    [(statement, runs)] = _prepared(*marker)
    assert '"status" = $' in statement  # the values travel apart: one statement for all
    # Prepared at the fifth run; the runs since then did not parse the statement again.
    assert runs >= 3


def test_values_bound_on_the_server_keep_their_meaning(make_workflow: Any) -> None:
    """Strings that look like SQL, quotes, a percent sign, non-ASCII: stored and matched
    as they are (with server-side binding nothing is quoted into the statement)."""
    require_postgres()
    workflow = make_workflow("binding")
    for value in ["it's", "50% off", "a'); DROP TABLE workflows_case; --", "naïve ✓", ""]:
        for _ in range(6):
            assert not Case.objects.filter(workflow=workflow, external_id=value).exists()
    assert Case.objects.filter(workflow=workflow).count() == 0


def test_the_near_copy_lookup_is_never_prepared(make_workflow: Any) -> None:
    require_postgres()
    workflow = make_workflow("lookup")
    for _ in range(8):
        assert case_duplicate_root(workflow=workflow, phash=PHASH) is None
    assert _prepared("mates") == []
    # The same statement outside ``unprepared()`` would be: the test sees the difference.
    mates_sql, _crowded = _DUPLICATE_SQL["postgresql"]
    parameters = duplicate_lookup_parameters(workflow_id=workflow.pk, phash=PHASH)
    with connection.cursor() as cursor:
        for _ in range(6):
            cursor.execute(mates_sql, parameters)
            cursor.fetchall()
    assert len(_prepared("mates")) == 1


def test_unprepared_applies_only_inside_its_block(make_workflow: Any) -> None:
    require_postgres()
    workflow = make_workflow("block")
    query = Case.objects.filter(workflow=workflow, image_format="PNG").values_list(
        "labelled_at", "gold_label"
    )
    marker = ('"labelled_at"', '"gold_label"')
    with unprepared():
        for _ in range(6):
            list(query.all())
    assert _prepared(*marker) == []
    for _ in range(6):
        list(query.all())
    assert len(_prepared(*marker)) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 5), ("5", 5), (" 12 ", 12), ("0", 0), ("off", None), ("OFF", None), ("none", None)],
)
def test_the_prepare_threshold_comes_from_the_environment(
    monkeypatch: Any, value: str | None, expected: int | None
) -> None:
    if value is None:
        monkeypatch.delenv("DATABASE_PREPARE_THRESHOLD", raising=False)
    else:
        monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", value)
    assert env_prepare_threshold("DATABASE_PREPARE_THRESHOLD") == expected


@pytest.mark.parametrize("value", ["-1", "five", "2.5", ""])
def test_a_prepare_threshold_that_is_no_count_is_refused_by_name(
    monkeypatch: Any, value: str
) -> None:
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", value)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_PREPARE_THRESHOLD"):
        env_prepare_threshold("DATABASE_PREPARE_THRESHOLD")
