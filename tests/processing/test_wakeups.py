"""Coalesced wake-ups: one drain message per burst of cases, and no case left behind.

The flag "a drain of this workflow is queued" is set with SET NX at ingest and cleared by
the drain before its first claim; these tests hold the publishing (the drain message is
recorded, not run) to check who publishes when.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from decisions.routing import Level
from processing import services, wakeups
from processing.tasks import workflow_drain
from tests.conftest import image_bytes
from workflows.models import Case, CaseStatus

pytestmark = pytest.mark.django_db


class Published:
    """Stands in for the broker: records each drain message instead of running it."""

    def __init__(self) -> None:
        self.workflow_ids: list[int] = []

    def __call__(self, workflow_id: int) -> None:
        self.workflow_ids.append(workflow_id)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    record = Published()
    flags = wakeups.MemoryWakeFlags(ttl=60)
    monkeypatch.setattr(wakeups, "wake_flags", lambda: flags)
    monkeypatch.setattr(workflow_drain, "delay", record)
    return record


def submit(workflow: Any, capture: Any, *, seed: int = 0) -> Case:
    with capture(execute=True):
        return services.case_create(
            workflow=workflow,
            image_data=image_bytes(seed=seed),
            external_id=None,
            metadata={},
            submitted_by=None,
        ).case


def test_a_burst_of_cases_publishes_one_drain(
    make_workflow: Any, published: Published, django_capture_on_commit_callbacks: Any
) -> None:
    workflow = make_workflow("burst", level=Level.FULL)
    for seed in range(6):
        submit(workflow, django_capture_on_commit_callbacks, seed=seed)
    assert published.workflow_ids == [workflow.id]

    assert services.workflow_drain(workflow_id=workflow.id) == 6
    assert not Case.objects.filter(status=CaseStatus.RECEIVED).exists()
    # The drain took the flag down: the next case wakes a new drain.
    submit(workflow, django_capture_on_commit_callbacks, seed=7)
    assert published.workflow_ids == [workflow.id, workflow.id]


def test_workflows_are_woken_separately(
    make_workflow: Any, published: Published, django_capture_on_commit_callbacks: Any
) -> None:
    first = make_workflow("first", level=Level.FULL)
    second = make_workflow("second", level=Level.FULL)
    submit(first, django_capture_on_commit_callbacks)
    submit(second, django_capture_on_commit_callbacks)
    submit(first, django_capture_on_commit_callbacks, seed=1)
    assert published.workflow_ids == [first.id, second.id]


def test_a_case_that_arrives_while_the_drain_finishes_wakes_a_new_drain(
    make_workflow: Any,
    published: Published,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race: a case committed after the drain's last claim found the queue short of a
    full batch. It must not wait behind a flag that no drain will take down."""
    workflow = make_workflow("race", level=Level.FULL)
    submit(workflow, django_capture_on_commit_callbacks)
    assert published.workflow_ids == [workflow.id]
    claim = services._cases_claim
    late: list[Case] = []

    def claim_then_a_case_arrives(**kwargs: Any) -> list[Case]:
        claimed = claim(**kwargs)
        if not late:
            late.append(submit(workflow, django_capture_on_commit_callbacks, seed=1))
        return claimed

    monkeypatch.setattr(services, "_cases_claim", claim_then_a_case_arrives)
    assert services.workflow_drain(workflow_id=workflow.id) == 1
    late[0].refresh_from_db()
    assert late[0].status == CaseStatus.RECEIVED
    assert published.workflow_ids == [workflow.id, workflow.id]


def test_a_full_batch_is_followed_by_another_claim(
    make_workflow: Any, settings: Any, published: Published
) -> None:
    settings.LOOPGATE_INFERENCE_BATCH_SIZE = 4
    workflow = make_workflow("batches", level=Level.FULL)
    for seed in range(10):
        services.case_create(
            workflow=workflow,
            image_data=image_bytes(seed=seed),
            external_id=None,
            metadata={},
            submitted_by=None,
        )
    assert services.workflow_drain(workflow_id=workflow.id) == 10
    assert published.workflow_ids == []


def test_a_drain_past_its_time_wakes_a_successor(
    make_workflow: Any, settings: Any, published: Published
) -> None:
    settings.LOOPGATE_INFERENCE_BATCH_SIZE = 2
    settings.LOOPGATE_DRAIN_MAX_SECONDS = 0
    workflow = make_workflow("long", level=Level.FULL)
    for seed in range(5):
        services.case_create(
            workflow=workflow,
            image_data=image_bytes(seed=seed),
            external_id=None,
            metadata={},
            submitted_by=None,
        )
    assert services.workflow_drain(workflow_id=workflow.id) == 2
    assert published.workflow_ids == [workflow.id]
    assert Case.objects.filter(status=CaseStatus.RECEIVED).count() == 3


# --- The batch wait (D149) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait_ms", "last_ended", "now", "expected"),
    [
        (15, None, 100.0, 0.0),  # the process's first drain of the workflow
        (15, 99.0, 100.0, 0.0),  # a quiet second since the last drain: a lone case
        (15, 99.99, 100.0, 0.015),  # cases arriving steadily: gather them
        (15, 100.0, 100.0, 0.015),
        (0, 99.999, 100.0, 0.0),  # off
    ],
)
def test_batch_wait(
    settings: Any, wait_ms: float, last_ended: float | None, now: float, expected: float
) -> None:
    settings.LOOPGATE_INFERENCE_BATCH_WAIT_MS = wait_ms
    assert services.batch_wait_seconds(last_ended=last_ended, now=now) == pytest.approx(expected)


def test_a_drain_right_after_another_waits_and_one_after_a_quiet_spell_does_not(
    make_workflow: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LOOPGATE_INFERENCE_BATCH_WAIT_MS = 15
    workflow = make_workflow("steady", level=Level.FULL)
    slept: list[float] = []
    monkeypatch.setattr(services.time, "sleep", slept.append)
    monkeypatch.setattr(services, "_drains_ended", {})
    services.workflow_drain(workflow_id=workflow.id)
    assert slept == []  # the first drain: at once
    services.workflow_drain(workflow_id=workflow.id)
    assert slept == [pytest.approx(0.015)]  # right after the previous one
    services._drains_ended[workflow.id] -= 60
    services.workflow_drain(workflow_id=workflow.id)
    assert slept == [pytest.approx(0.015)]  # after a quiet minute: at once
    other = make_workflow("other", level=Level.FULL)
    services.workflow_drain(workflow_id=other.id)
    assert len(slept) == 1  # per workflow


def test_cases_that_arrive_during_the_wait_join_the_batch_without_a_message(
    make_workflow: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    published: Published,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.LOOPGATE_INFERENCE_BATCH_WAIT_MS = 15
    workflow = make_workflow("joiners", level=Level.FULL)
    submit(workflow, django_capture_on_commit_callbacks, seed=1)
    assert published.workflow_ids == [workflow.id]
    # The previous drain ended a moment ago: this one waits, and two cases arrive.
    monkeypatch.setattr(services, "_drains_ended", {workflow.id: services.time.monotonic()})
    seeds = iter([2, 3])

    def sleep(seconds: float) -> None:
        assert seconds > 0
        submit(workflow, django_capture_on_commit_callbacks, seed=next(seeds))
        submit(workflow, django_capture_on_commit_callbacks, seed=next(seeds))

    monkeypatch.setattr(services.time, "sleep", sleep)
    assert services.workflow_drain(workflow_id=workflow.id) == 3
    assert published.workflow_ids == [workflow.id]  # no message for the two that joined
    submit(workflow, django_capture_on_commit_callbacks, seed=4)
    assert published.workflow_ids == [workflow.id, workflow.id]  # the flag is down again


def test_a_drain_that_fails_still_counts_as_the_last(
    make_workflow: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = make_workflow("failing", level=Level.FULL)
    monkeypatch.setattr(services, "_drains_ended", {})

    def claim(**_: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_cases_claim", claim)
    with pytest.raises(RuntimeError):
        services.workflow_drain(workflow_id=workflow.id)
    assert workflow.id in services._drains_ended


def test_a_refused_wake_up_leaves_no_flag_behind(
    make_workflow: Any,
    published: Published,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flag whose message the broker refused would hold back every later case."""
    workflow = make_workflow("refused", level=Level.FULL)

    def broker_down(workflow_id: int) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(workflow_drain, "delay", broker_down)
    case = submit(workflow, django_capture_on_commit_callbacks)
    case.refresh_from_db()
    assert case.publish_pending
    monkeypatch.setattr(workflow_drain, "delay", published)
    submit(workflow, django_capture_on_commit_callbacks, seed=1)
    assert published.workflow_ids == [workflow.id]


# --- The flag stores -------------------------------------------------------------------


def check_store(store: Any, *, expires: Any) -> None:
    assert store.set_if_absent(7)
    assert not store.set_if_absent(7)
    assert store.set_if_absent(8)  # per workflow
    store.clear(7)
    assert store.set_if_absent(7)
    store.clear(7)
    store.clear(7)  # clearing an absent flag is fine
    store.set(9)
    assert not store.set_if_absent(9)
    expires()
    assert store.set_if_absent(9)


def test_file_flags(tmp_path: Path) -> None:
    store = wakeups.FileWakeFlags(tmp_path / "wake", ttl=30)

    def expire() -> None:
        old = time.time() - 60
        import os

        os.utime(store.path(9), (old, old))

    check_store(store, expires=expire)


def test_redis_flags() -> None:
    from tests.conftest import require_postgres_and_redis

    require_postgres_and_redis()
    from django.conf import settings

    store = wakeups.RedisWakeFlags(settings.CELERY_BROKER_URL, ttl=30)
    for workflow_id in (7, 8, 9):
        store.clear(workflow_id)
    check_store(store, expires=lambda: store.client.pexpire(store.key(9), 1) and time.sleep(0.01))
    for workflow_id in (7, 8, 9):
        store.clear(workflow_id)


def test_memory_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    store = wakeups.MemoryWakeFlags(ttl=30)
    clock = [1000.0]
    monkeypatch.setattr(wakeups.time, "monotonic", lambda: clock[0])

    def expire() -> None:
        clock[0] += 31

    check_store(store, expires=expire)


def test_the_embedded_broker_keeps_its_flags_beside_its_queue(tmp_path: Path) -> None:
    from tests.integration.conftest import app_use_broker

    restore = app_use_broker(
        "filesystem://",
        transport="loopgate.broker:Transport",
        options={"data_folder_in": str(tmp_path / "queue")},
    )
    try:
        store = wakeups.wake_flags()
    finally:
        restore()
    assert isinstance(store, wakeups.FileWakeFlags)
    assert store.folder == tmp_path / "wake"
    assert isinstance(wakeups.wake_flags(), wakeups.MemoryWakeFlags)  # eager again
