"""``kernel.bulkupdate.objects_update``: rows with different values in one UPDATE, stored
exactly as ``save()`` would store them (PostgreSQL's VALUES path; other databases fall
back to ``bulk_update``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.bulkupdate import objects_update
from tests.conftest import case_row
from workflows.models import Case, CaseStatus

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def make_case(workflow: Any, **fields: Any) -> Case:
    case: Case = case_row(workflow, **fields)
    return case


def test_each_row_gets_its_own_values_of_every_type_in_one_statement(
    make_workflow: Any, demo_model_version: Any
) -> None:
    workflow = make_workflow()
    cases = [make_case(workflow) for _ in range(3)]
    untouched = make_case(workflow, metadata={"keep": True})
    when = dt.datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    values: list[dict[str, Any]] = [
        {
            "status": CaseStatus.PROCESSING,
            "metadata": {"station": "line-1", "nested": [1, 2.5, None, "ü"]},
            "processing_started_at": when,
            "processing_attempts": 2,
            "publish_pending": True,
            "routed_threshold": 0.875,
            "decision_model_version_id": demo_model_version.pk,
            "failure_reason": "it's 'quoted' -- and; semi",
        },
        {
            "status": CaseStatus.DECIDED,
            "metadata": [],
            "processing_started_at": None,
            "processing_attempts": 0,
            "publish_pending": False,
            "routed_threshold": None,
            "decision_model_version_id": None,
            "failure_reason": "",
        },
        {
            "status": CaseStatus.IN_REVIEW,
            "metadata": {"s": "null", "n": None},
            "processing_started_at": when + dt.timedelta(days=400),
            "processing_attempts": 32767,
            "publish_pending": True,
            "routed_threshold": 1e-300,
            "decision_model_version_id": demo_model_version.pk,
            "failure_reason": "\u2603" * 5000,
        },
    ]
    for case, fields in zip(cases, values, strict=True):
        for name, value in fields.items():
            setattr(case, name, value)
    names = [name.removesuffix("_id") for name in values[0]]
    with CaptureQueriesContext(connection) as queries:
        matched = objects_update(cases, names)
    assert matched == 3
    if connection.vendor == "postgresql":
        assert len(queries) == 1
        assert "CASE" not in queries[0]["sql"]
    for case, fields in zip(cases, values, strict=True):
        stored = Case.objects.get(pk=case.pk)
        for name, value in fields.items():
            assert getattr(stored, name) == value, name
    stored = Case.objects.get(pk=untouched.pk)
    assert stored.metadata == {"keep": True}
    assert stored.status == CaseStatus.RECEIVED


def test_a_value_too_long_for_its_column_is_refused_and_nothing_is_written(
    make_workflow: Any,
) -> None:
    workflow = make_workflow()
    first, second = make_case(workflow), make_case(workflow)
    first.claimed_by = "worker-1"
    second.claimed_by = "x" * 256  # the column is varchar(255): never cut short
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce varchar lengths")
    with pytest.raises(DataError), transaction.atomic():
        objects_update([first, second], ["claimed_by"])
    assert set(Case.objects.values_list("claimed_by", flat=True)) == {""}


def test_only_columns_other_than_the_key_can_be_written(make_workflow: Any) -> None:
    case = make_case(make_workflow())
    with pytest.raises(ValueError, match="the key is not updated"):
        objects_update([case], ["id"])
    assert objects_update([], ["status"]) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(
        st.tuples(
            st.text(max_size=64).filter(lambda s: "\x00" not in s),
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
            st.dictionaries(
                st.text(max_size=8).filter(lambda s: "\x00" not in s),
                st.one_of(
                    st.integers(-(2**53), 2**53),
                    st.booleans(),
                    st.none(),
                    st.text(max_size=8).filter(lambda s: "\x00" not in s),
                ),
                max_size=4,
            ),
            st.one_of(
                st.none(),
                st.datetimes(
                    min_value=dt.datetime(1970, 1, 1),
                    max_value=dt.datetime(2200, 1, 1),
                    timezones=st.just(UTC),
                ),
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_values_are_stored_as_save_would_store_them(
    rows: list[tuple[str, float | None, dict[str, Any], dt.datetime | None]],
) -> None:
    from workflows.models import Workflow

    workflow, _ = Workflow.objects.get_or_create(
        slug="bulk", defaults={"name": "Bulk", "labels": ["ok", "scratch"]}
    )
    cases = [make_case(workflow) for _ in rows]
    for case, (label, threshold, metadata, started) in zip(cases, rows, strict=True):
        case.decision_label = label
        case.routed_threshold = threshold
        case.metadata = metadata
        case.processing_started_at = started
    objects_update(
        cases, ["decision_label", "routed_threshold", "metadata", "processing_started_at"]
    )
    for case, (label, threshold, metadata, started) in zip(cases, rows, strict=True):
        stored = Case.objects.get(pk=case.pk)
        assert stored.decision_label == label
        assert stored.routed_threshold == threshold
        assert stored.metadata == metadata
        assert stored.processing_started_at == started
