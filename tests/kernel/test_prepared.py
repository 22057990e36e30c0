"""``kernel.prepared.Prepared``: a queryset compiled once answers as the queryset would,
for every value, with its related objects and annotations, on each thread's connection."""

from __future__ import annotations

import datetime as dt
import gc
import threading
import uuid
import weakref
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count, QuerySet
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.prepared import Prepared
from tests.conftest import case_row
from workflows.models import Case, CaseStatus, Workflow

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MARK_AT = dt.datetime(1901, 1, 1, 0, 0, 0, 1, tzinfo=UTC)


def cases_query(workflow_id: int, status: str, after: dt.datetime) -> QuerySet[Case]:
    return (
        Case.objects.select_related("workflow")
        .annotate(event_count=Count("events"))
        .filter(workflow_id=workflow_id, status=status, created_at__gt=after)
        .order_by("created_at", "id")
    )[:1]


CASES = Prepared(Case, cases_query, workflow_id=-9_000_001, status="marker-status", after=MARK_AT)


def test_it_answers_as_the_queryset_does_for_other_values(make_workflow: Any) -> None:
    first, second = make_workflow("first"), make_workflow("second")
    early = case_row(first)
    late = case_row(first, status=CaseStatus.IN_REVIEW)
    other = case_row(second, status=CaseStatus.IN_REVIEW)
    for workflow, status, after in [
        (first, CaseStatus.RECEIVED, MARK_AT),
        (first, CaseStatus.IN_REVIEW, MARK_AT),
        (second, CaseStatus.IN_REVIEW, MARK_AT),
        (first, CaseStatus.IN_REVIEW, late.created_at),
        (second, CaseStatus.DECIDED, MARK_AT),
    ]:
        expected = cases_query(workflow.pk, status, after).first()
        got = CASES.first(workflow_id=workflow.pk, status=status, after=after)
        assert got == expected
        if got is not None:
            # The related row came with it, and the annotation: no further query.
            with CaptureQueriesContext(connection) as queries:
                assert got.workflow.slug == workflow.slug
                assert got.event_count == 0  # type: ignore[attr-defined]
            assert len(queries) == 0
            assert got.metadata == expected.metadata
    assert {early.pk, late.pk, other.pk} >= {
        CASES.first(workflow_id=w.pk, status=s, after=MARK_AT).pk  # type: ignore[union-attr]
        for w, s in [(first, CaseStatus.RECEIVED), (second, CaseStatus.IN_REVIEW)]
    }


def test_it_compiles_once(make_workflow: Any, monkeypatch: Any) -> None:
    workflow = make_workflow()
    case_row(workflow)
    builds = []

    def build(workflow_id: int) -> QuerySet[Case]:
        builds.append(workflow_id)
        return Case.objects.filter(workflow_id=workflow_id).order_by("id")[:1]

    prepared = Prepared(Case, build, workflow_id=-9_000_002)
    for _ in range(3):
        assert prepared.first(workflow_id=workflow.pk) is not None
    assert prepared.first(workflow_id=workflow.pk + 1000) is None
    assert builds == [-9_000_002]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.integers())
def test_any_integer_is_answered_never_an_error(make_workflow: Any, value: int) -> None:
    """Beyond the 64-bit range nothing matches (as Django's integer lookups answer)."""
    prepared = Prepared(Workflow, lambda pk: Workflow.objects.filter(pk=pk)[:1], pk=-9_000_003)
    assert prepared.first(pk=value) == Workflow.objects.filter(pk=value).first()


def test_markers_must_be_parameters_of_their_own() -> None:
    missing = Prepared(Workflow, lambda pk: Workflow.objects.all()[:1], pk=-9_000_004)
    with pytest.raises(ValueError, match="not a parameter"):
        missing.first(pk=1)
    shared = Prepared(
        Workflow,
        lambda a, b: Workflow.objects.filter(slug=a, name=b)[:1],
        a="marker-same",
        b="marker-same",
    )
    with pytest.raises(ValueError, match="share a value"):
        shared.first(a="x", b="y")
    with pytest.raises(TypeError, match="give exactly"):
        CASES.first(workflow_id=1)


@pytest.mark.django_db(transaction=True)
def test_each_thread_runs_on_its_own_connection(make_workflow: Any) -> None:
    """Compiled on one thread, run on others: each on its own connection (a shared one
    would mix the threads' transactions)."""
    workflow = make_workflow()
    case = case_row(workflow)
    assert CASES.first(workflow_id=workflow.pk, status=case.status, after=MARK_AT) == case
    seen: list[Any] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with CaptureQueriesContext(connections["default"]) as queries:
                found = CASES.first(workflow_id=workflow.pk, status=case.status, after=MARK_AT)
            seen.append((found, len(queries)))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    # Each found the case with one query of its own connection.
    assert seen == [(case, 1)] * 3


@pytest.mark.django_db(transaction=True)
def test_a_locking_query_outside_a_transaction_is_refused(make_workflow: Any) -> None:
    """As Django's compiler refuses it: the lock would end with the statement."""
    workflow = make_workflow()
    locked = Prepared(
        Workflow,
        lambda pk: Workflow.objects.select_for_update().filter(pk=pk)[:1],
        pk=-9_000_006,
    )
    with transaction.atomic():
        assert locked.first(pk=workflow.pk) == workflow
    with pytest.raises(TransactionManagementError):
        locked.first(pk=workflow.pk)


@pytest.mark.django_db(transaction=True)
def test_converters_are_worked_out_once_per_connection(
    make_workflow: Any, monkeypatch: Any
) -> None:
    """A JSON column comes back as Python values on every run and every thread's
    connection, and the columns' converters are asked for once per connection."""
    from django.db.models.sql.compiler import SQLCompiler

    workflow = make_workflow()
    case = case_row(workflow, metadata={"line": [1, 2]})
    asked: list[Any] = []
    original = SQLCompiler.get_converters

    def counted(self: SQLCompiler, expressions: Any) -> Any:
        asked.append(self.connection)
        return original(self, expressions)

    monkeypatch.setattr(SQLCompiler, "get_converters", counted)
    prepared = Prepared(
        Case, lambda pk: Case.objects.filter(pk=pk)[:1], pk=uuid.UUID(int=9_000_005)
    )
    for _ in range(3):
        found = prepared.first(pk=case.pk)
        assert found is not None and found.metadata == {"line": [1, 2]}
    assert asked == [connections["default"]]
    failures: list[BaseException] = []
    held: list[weakref.ref[Any]] = []

    def run() -> None:
        try:
            held.append(weakref.ref(connections["default"]))
            for _ in range(2):
                found = prepared.first(pk=case.pk)
                assert found is not None and found.metadata == {"line": [1, 2]}
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not failures, failures
    # Once more for the thread's own connection, not for each of its runs.
    assert len(asked) == 2 and asked[1] is not asked[0]
    # What was kept for the thread went with it: its connection is not held.
    asked.clear()
    gc.collect()
    assert held[0]() is None
