"""``kernel.joinedwrites``: the INSERTs and UPDATEs of a block sent together when it ends
(one statement on PostgreSQL), stored exactly as ``save()`` would store them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from kernel import joinedwrites
from tests.conftest import case_row
from workflows.models import ActorType, Case, CaseEvent, CaseStatus

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def unsaved_case(workflow: Any, **fields: Any) -> Case:
    """A case not yet stored, with its key (what ``case_row`` stores at once)."""
    return Case(
        id=uuid.uuid4(),
        workflow=workflow,
        image="cases/new.png",
        image_format="PNG",
        image_width=4,
        image_height=4,
        image_bytes=16,
        image_sha256="1" * 64,
        **fields,
    )


def event_for(case: Case, kind: str, **data: Any) -> CaseEvent:
    return CaseEvent(
        case=case, kind=kind, actor_type=ActorType.SYSTEM, reason=f"{kind} reason", data=data
    )


def test_the_block_writes_once_when_it_ends_as_save_would(make_workflow: Any) -> None:
    workflow = make_workflow()
    case = case_row(workflow)
    before = Case.objects.get(pk=case.pk).updated_at
    new = unsaved_case(workflow, metadata={"line": "ü", "nested": [1, 2.5, None]})
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        with joinedwrites.joined():
            case.status = CaseStatus.PROCESSING
            case.metadata = {"station": 3}
            joinedwrites.update(case, ["status", "metadata", "updated_at"])
            joinedwrites.insert(event_for(case, "moved", to="processing"), pk_unknown=True)
            joinedwrites.insert(new)
            joinedwrites.insert(event_for(new, "received"), pk_unknown=True)
            # Nothing is sent while the block runs: the rows are not there yet.
            assert not Case.objects.filter(pk=new.pk).exists()
            assert Case.objects.get(pk=case.pk).status == CaseStatus.RECEIVED
            inside = len(queries)
        # The four writes were one statement (on SQLite, four in a row).
        assert len(queries) == inside + (1 if on_postgres() else 4)
    stored = Case.objects.get(pk=case.pk)
    assert (stored.status, stored.metadata) == (CaseStatus.PROCESSING, {"station": 3})
    # ``auto_now`` moved, in memory and in the row alike.
    assert stored.updated_at > before
    assert stored.updated_at == case.updated_at
    assert Case.objects.get(pk=new.pk).metadata == {"line": "ü", "nested": [1, 2.5, None]}
    assert not new._state.adding
    # The parts of one statement take their ids in no set order; their stamps are the
    # order they were handed over.
    kinds = list(
        CaseEvent.objects.filter(case__in=[case, new])
        .order_by("created_at")
        .values_list("case", "kind")
    )
    assert kinds == [(case.pk, "moved"), (new.pk, "received")]
    moved = CaseEvent.objects.get(case=case, kind="moved")
    assert (moved.data, moved.reason, moved.created_at is not None) == (
        {"to": "processing"},
        "moved reason",
        True,
    )


def test_a_block_that_raises_writes_nothing(make_workflow: Any) -> None:
    workflow = make_workflow()
    case = case_row(workflow)
    with pytest.raises(RuntimeError), transaction.atomic(), joinedwrites.joined():
        case.status = CaseStatus.PROCESSING
        joinedwrites.update(case, ["status"])
        joinedwrites.insert(event_for(case, "moved"), pk_unknown=True)
        raise RuntimeError("refused half way")
    assert Case.objects.get(pk=case.pk).status == CaseStatus.RECEIVED
    assert not CaseEvent.objects.filter(case=case).exists()
    # The block is over: a write now goes at once.
    joinedwrites.insert(event := event_for(case, "after"))
    assert event.pk is not None
    assert CaseEvent.objects.filter(case=case, kind="after").exists()


def test_an_inner_block_joins_the_outer(make_workflow: Any) -> None:
    case = case_row(make_workflow())
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        with joinedwrites.joined():
            with joinedwrites.joined():
                joinedwrites.insert(event_for(case, "inner"), pk_unknown=True)
            # The inner block's end sent nothing.
            assert not CaseEvent.objects.filter(case=case).exists()
            joinedwrites.insert(event_for(case, "outer"), pk_unknown=True)
            inside = len(queries)
        assert len(queries) == inside + (1 if on_postgres() else 2)
    assert CaseEvent.objects.filter(case=case).count() == 2


def test_a_failing_part_fails_the_whole_statement(make_workflow: Any) -> None:
    """A duplicate ``external_id`` in one part: the other parts are not written either."""
    workflow = make_workflow()
    taken = case_row(workflow, external_id="part-1")
    other = case_row(workflow)
    clash = unsaved_case(workflow, external_id="part-1")
    with pytest.raises(IntegrityError), transaction.atomic(), joinedwrites.joined():
        other.status = CaseStatus.PROCESSING
        joinedwrites.update(other, ["status"])
        joinedwrites.insert(clash)
    assert Case.objects.get(pk=other.pk).status == CaseStatus.RECEIVED
    assert list(Case.objects.filter(external_id="part-1").values_list("pk", flat=True)) == [
        taken.pk
    ]


def test_a_row_without_its_key_is_refused_unless_no_one_reads_it(make_workflow: Any) -> None:
    case = case_row(make_workflow())
    with transaction.atomic(), joinedwrites.joined():
        with pytest.raises(ValueError, match="needs its primary key"):
            joinedwrites.insert(event_for(case, "keyless"))
        joinedwrites.insert(event_for(case, "unread"), pk_unknown=True)
    assert list(CaseEvent.objects.filter(case=case).values_list("kind", flat=True)) == ["unread"]


@pytest.mark.skipif("not on_postgres()", reason="SQLite does not bound a column's length")
def test_a_value_too_long_for_its_column_is_refused_not_cut(make_workflow: Any) -> None:
    case = case_row(make_workflow())
    event = event_for(case, "x" * 200)
    with pytest.raises(DataError), transaction.atomic(), joinedwrites.joined():
        joinedwrites.insert(event, pk_unknown=True)
    assert not CaseEvent.objects.filter(case=case).exists()


def test_an_inner_block_that_raises_drops_its_writes_only(make_workflow: Any) -> None:
    case = case_row(make_workflow())
    with transaction.atomic(), joinedwrites.joined():
        joinedwrites.insert(event_for(case, "kept"), pk_unknown=True)
        with pytest.raises(RuntimeError), joinedwrites.joined():
            case.status = CaseStatus.PROCESSING
            joinedwrites.update(case, ["status"])
            raise RuntimeError("the inner step gave up")
        # The case may be written again: the dropped update no longer counts.
        case.status = CaseStatus.IN_REVIEW
        joinedwrites.update(case, ["status"])
    assert Case.objects.get(pk=case.pk).status == CaseStatus.IN_REVIEW
    assert list(CaseEvent.objects.filter(case=case).values_list("kind", flat=True)) == ["kept"]


def test_a_write_inside_a_nested_atomic_block_is_refused(make_workflow: Any) -> None:
    """Its savepoint could not undo a write sent when the joined block ends."""
    case = case_row(make_workflow())
    with (
        transaction.atomic(),
        joinedwrites.joined(),
        pytest.raises(TransactionManagementError),
        transaction.atomic(),
    ):
        joinedwrites.insert(event_for(case, "in a savepoint"), pk_unknown=True)
    assert not CaseEvent.objects.filter(case=case).exists()
    # A joined block opened inside the savepoint is fine.
    with transaction.atomic(), transaction.atomic(), joinedwrites.joined():
        joinedwrites.insert(event_for(case, "inside"), pk_unknown=True)
    assert CaseEvent.objects.filter(case=case, kind="inside").exists()


def test_one_row_twice_in_a_block_or_an_update_without_key_is_refused(
    make_workflow: Any,
) -> None:
    case = case_row(make_workflow())
    with transaction.atomic(), joinedwrites.joined():
        joinedwrites.update(case, ["status"])
        with pytest.raises(ValueError, match="written twice"):
            joinedwrites.update(case, ["metadata"])
        with pytest.raises(ValueError, match="needs its key and a field"):
            joinedwrites.update(case, [])
        with pytest.raises(ValueError, match="needs its key and a field"):
            joinedwrites.update(event_for(case, "unsaved"), ["kind"])


# --- Statements compiled once (D142) -------------------------------------------------------


def django_compiles(kind: str, row: Any, fields: list[str] | None = None) -> tuple[str, list]:
    """What Django alone writes for the row (the cache of compiled statements set aside)."""
    saved = dict(joinedwrites._compiled)
    joinedwrites._compiled.clear()
    try:
        if kind == "insert":
            return joinedwrites._insert_sql(row, "default")
        return joinedwrites._update_sql(row, fields or [], "default")
    finally:
        joinedwrites._compiled.clear()
        joinedwrites._compiled.update(saved)


def test_a_statement_compiled_once_binds_each_row_as_django_would(
    make_workflow: Any, monkeypatch: Any
) -> None:
    """Row after row, nulls here and there (Django writes ``= NULL`` into the SQL for
    those), JSON, text: the SQL and parameters are Django's own."""
    from django.db.models import fields as model_fields

    workflow = make_workflow()
    # One clock for both compilations (each stamps ``auto_now`` fields).
    frozen = dt.datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    monkeypatch.setattr(model_fields.timezone, "now", lambda: frozen)
    fields = ["status", "decision_label", "decision_confidence", "metadata", "updated_at"]
    rows = [
        (None, "", {}),
        (0.25, "ok", {"line": "ü", "n": [1, None]}),
        (None, "crack", {"a": 1}),
        (0.0, "", {}),
        (1.0, "ü", {"deep": {"x": "y"}}),
    ]
    for confidence, label, metadata in rows:
        case = case_row(workflow)
        case.status = CaseStatus.DECIDED
        case.decision_label = label
        case.decision_confidence = confidence
        case.metadata = metadata
        sql, params = joinedwrites._update_sql(case, fields, "default")
        django_sql, django_params = django_compiles("update", case, fields)
        assert sql == django_sql
        assert joinedwrites._same(params, django_params)
        assert ('"decision_confidence" = NULL' in sql) == (confidence is None)
        new = unsaved_case(workflow, metadata=metadata, external_id=label or None)
        sql, params = joinedwrites._insert_sql(new, "default")
        django_sql, django_params = django_compiles("insert", new)
        assert sql == django_sql
        assert joinedwrites._same(params, django_params)


def test_rows_that_differ_only_in_values_share_one_compiled_statement(
    make_workflow: Any,
) -> None:
    workflow = make_workflow()
    joinedwrites._compiled.clear()
    first, second = case_row(workflow), case_row(workflow)
    with transaction.atomic(), joinedwrites.joined():
        for case, label in ((first, "ok"), (second, "crack")):
            case.decision_label = label
            joinedwrites.update(case, ["decision_label", "updated_at"])
    cached = [sql for key, sql in joinedwrites._compiled.items() if key[0] == "update"]
    assert len(cached) == 1 and cached[0] is not None
    assert Case.objects.get(pk=first.pk).decision_label == "ok"
    assert Case.objects.get(pk=second.pk).decision_label == "crack"


def test_an_expression_is_compiled_by_django_every_time(make_workflow: Any) -> None:
    from django.db.models import F

    workflow = make_workflow()
    case = case_row(workflow)
    for _ in range(2):
        with transaction.atomic(), joinedwrites.joined():
            case.processing_attempts = F("processing_attempts") + 1
            joinedwrites.update(case, ["processing_attempts"])
        case = Case.objects.get(pk=case.pk)
    assert case.processing_attempts == 2


def test_parameters_that_are_not_django_s_are_never_cached() -> None:
    key = ("test", object())
    sql, params = joinedwrites._prepared(key, [1, "a"], lambda: ("SELECT %s, %s", [1, "b"]))
    assert (sql, params) == ("SELECT %s, %s", [1, "b"])
    assert joinedwrites._compiled[key] is None
    # From then on Django compiles this statement every time.
    calls = []

    def compile_sql() -> tuple[str, list]:
        calls.append(1)
        return "SELECT %s, %s", [2, "c"]

    assert joinedwrites._prepared(key, [2, "x"], compile_sql) == ("SELECT %s, %s", [2, "c"])
    assert calls == [1]
    del joinedwrites._compiled[key]


def test_a_row_inserted_with_its_key_returned_is_stored_as_save_would(
    make_workflow: Any, make_user: Any
) -> None:
    """``insert_returning_key``: at once, the generated key set, the statement compiled
    once for every such row; refused inside a joined block."""
    from review.models import ReviewTask, Verdict

    workflow = make_workflow()
    reviewer = make_user("judge")
    joinedwrites._compiled.clear()
    rows = []
    for label in ("ok", "crack"):
        case = case_row(workflow)
        task = ReviewTask.objects.create(case=case, workflow=workflow, kind="review")
        verdict = Verdict(task=task, case=case, reviewer=reviewer, label=label, comment="ü")
        with CaptureQueriesContext(connection) as queries:
            joinedwrites.insert_returning_key(verdict)
        assert len(queries) == 1
        assert verdict.pk is not None and not verdict._state.adding
        rows.append(verdict)
    stored = Verdict.objects.filter(pk__in=[v.pk for v in rows]).order_by("pk")
    assert [(v.label, v.comment, v.reviewer_id) for v in stored] == [
        ("ok", "ü", reviewer.pk),
        ("crack", "ü", reviewer.pk),
    ]
    assert stored[0].created_at == rows[0].created_at
    keys = [key for key in joinedwrites._compiled if key[1] is Verdict]
    if connection.features.can_return_columns_from_insert:
        assert len(keys) == 1 and joinedwrites._compiled[keys[0]] is not None
    case = case_row(workflow)
    task = ReviewTask.objects.create(case=case, workflow=workflow, kind="review")
    with transaction.atomic(), joinedwrites.joined(), pytest.raises(TransactionManagementError):
        joinedwrites.insert_returning_key(
            Verdict(task=task, case=case, reviewer=reviewer, label="ok")
        )
