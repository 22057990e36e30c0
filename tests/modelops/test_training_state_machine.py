"""The training run state machine: the table, its one function, and the event trail."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from modelops import retraining
from modelops.models import TrainingRun, TrainingRunEvent, TrainingStatus
from tests.modelops import factories
from workflows.models import ActorType

pytestmark = pytest.mark.django_db

TABLE = retraining.TRAINING_RUN_TRANSITIONS
PAIRS = list(itertools.product(TrainingStatus.values, repeat=2))


def run_at(workflow: Any, status: str, **fields: Any) -> TrainingRun:
    """A run put straight into ``status`` (a fixture: no service moves it there)."""
    return TrainingRun.objects.create(
        workflow=workflow,
        status=status,
        architecture="squeezenet1_1",
        input_size=32,
        seed=1,
        epochs_total=3,
        **fields,
    )


def moves(run: TrainingRun) -> list[tuple[str, str, str]]:
    return [
        (e.from_status, e.to_status, e.actor_type)
        for e in TrainingRunEvent.objects.filter(run_id=run.pk)
    ]


def test_every_status_has_a_row_and_the_final_ones_lead_nowhere() -> None:
    assert set(TABLE) == set(TrainingStatus.values)
    assert all(set(targets) <= set(TrainingStatus.values) for targets in TABLE.values())
    final = {TrainingStatus.SUCCEEDED, TrainingStatus.FAILED, TrainingStatus.CANCELLED}
    assert final == retraining.FINAL_TRAINING_STATUSES


@pytest.mark.parametrize(("start", "target"), PAIRS)
def test_each_move_is_allowed_by_the_table_or_refused(
    parts_workflow: Any, make_user: Any, start: str, target: str
) -> None:
    admin = make_user("ada")
    run = run_at(parts_workflow, start)
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if target in TABLE[start]:
            retraining.training_run_transition(
                run=run,
                to_status=target,
                actor_type=ActorType.USER,
                actor=admin,
                reason="table test",
                data={"n": 1},
            )
        else:
            with pytest.raises(retraining.InvalidRunTransition) as refused:
                retraining.training_run_transition(
                    run=run, to_status=target, actor_type=ActorType.SYSTEM, reason="table test"
                )
            assert refused.value.status_code == 409
    stored = TrainingRun.objects.get(pk=run.pk)
    if target not in TABLE[start]:
        assert stored.status == start
        assert moves(stored) == []
        return
    assert stored.status == target
    assert (stored.started_at is not None) == (target == TrainingStatus.RUNNING)
    assert (stored.finished_at is not None) == (target in retraining.FINAL_TRAINING_STATUSES)
    event = TrainingRunEvent.objects.get(run=stored)
    assert (event.from_status, event.to_status) == (start, target)
    assert event.actor == admin and event.reason == "table test" and event.data == {"n": 1}


def test_the_stale_run_sweeper_fails_runs_with_an_event(parts_workflow: Any) -> None:
    stale = run_at(
        parts_workflow,
        TrainingStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(hours=2),
    )
    assert retraining.training_runs_fail_stale() == 1
    assert retraining.training_runs_fail_stale() == 0
    stale.refresh_from_db()
    assert stale.status == TrainingStatus.FAILED and stale.finished_at is not None
    assert moves(stale) == [(TrainingStatus.RUNNING, TrainingStatus.FAILED, ActorType.SYSTEM)]
    assert "stopped reporting" in TrainingRunEvent.objects.get(run=stale).reason


def test_a_late_outcome_does_not_overwrite_a_run_that_already_ended(parts_workflow: Any) -> None:
    """The sweeper failed a run whose worker then finished after all: failed stands."""
    run = run_at(parts_workflow, TrainingStatus.FAILED, error="the worker stopped reporting")
    retraining._finish(run.pk, TrainingStatus.SUCCEEDED, reason="late")
    run.refresh_from_db()
    assert run.status == TrainingStatus.FAILED and moves(run) == []


def test_cancelling_a_queued_run_records_who(parts_workflow: Any, make_user: Any) -> None:
    admin = make_user("ada")
    run = run_at(parts_workflow, TrainingStatus.QUEUED)
    retraining.training_run_cancel(run=run, actor=admin)
    assert moves(run) == [(TrainingStatus.QUEUED, TrainingStatus.CANCELLED, ActorType.USER)]
    assert TrainingRunEvent.objects.get(run=run).actor == admin
    with pytest.raises(retraining.Conflict):
        retraining.training_run_cancel(run=run, actor=admin)


def test_a_failing_run_leaves_its_whole_trail(
    parts_workflow: Any, weights_file: Any, make_user: Any
) -> None:
    serving = factories.version_create(parts_workflow, weights_file(seed=1), factories.PART_LABELS)
    factories.deploy(parts_workflow, serving, "serving")
    factories.labelled_cases_create(parts_workflow, 12)
    run = retraining.training_run_start(
        workflow=parts_workflow,
        actor=make_user("ada", superuser=True),
        request=retraining.TrainingRequest(epochs=1, batch_size=8),
    )
    serving.weights.storage.delete(serving.weights.name)
    finished = retraining.training_run_execute(run_id=run.pk)
    assert finished.status == TrainingStatus.FAILED
    assert moves(finished) == [
        (TrainingStatus.QUEUED, TrainingStatus.RUNNING, ActorType.SYSTEM),
        (TrainingStatus.RUNNING, TrainingStatus.FAILED, ActorType.SYSTEM),
    ]
    assert TrainingRunEvent.objects.filter(run=finished).last().reason == finished.error
