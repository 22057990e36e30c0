"""Faults around processing: a broker that refuses a message, a worker process that dies.

A committed case keeps its image and is published later; a case claimed by a dead worker
process is taken over at once, and never decided twice.
"""

from __future__ import annotations

import io
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from decisions.routing import Level
from processing import services
from processing.tasks import workflow_drain
from tests.conftest import image_bytes
from workflows.models import Case, CaseEvent, CaseStatus, WorkerHeartbeat

ROUTED = (CaseStatus.DECIDED, CaseStatus.IN_REVIEW)


@pytest.fixture
def camera(make_user: Any, member: Any, client_for: Any) -> Any:
    def setup(workflow: Any) -> Any:
        user = make_user(f"camera-{workflow.slug}")
        member(user, workflow, submit=True)
        return client_for(user)

    return setup


def post(client: Any, slug: str, *, seed: int = 0, external_id: str | None = None) -> Any:
    buffer = io.BytesIO(image_bytes(seed=seed))
    buffer.name = "part.png"
    fields: dict[str, Any] = {"image": buffer}
    if external_id:
        fields["external_id"] = external_id
    return client.post(f"/api/v1/workflows/{slug}/cases/", fields, format="multipart")


def refuse_publishing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(workflow_drain, "delay", broker_down)


@pytest.mark.django_db(transaction=True)
class TestBrokerRefusesTheMessage:
    def test_the_case_is_accepted_keeps_its_image_and_is_published_later(
        self,
        make_workflow: Any,
        camera: Any,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        workflow = make_workflow("outage", level=Level.FULL)
        client = camera(workflow)
        refuse_publishing(monkeypatch)

        response = post(client, "outage", external_id="part-1")

        assert response.status_code == 201, response.content
        case = Case.objects.get(id=response.json()["id"])
        assert case.status == CaseStatus.RECEIVED
        assert case.publish_pending
        assert Path(case.image.path).is_file()
        assert case.events.filter(kind="publish_failed").count() == 1
        assert "processing message not published" in caplog.text

        # The client retries (it did not trust the first answer): the same case, 200.
        again = post(client, "outage", seed=1, external_id="part-1")
        assert again.status_code == 200
        assert again.json()["id"] == str(case.id)
        assert Case.objects.filter(workflow=workflow).count() == 1

        # The broker is back: the sweeper publishes, the (eager) task routes the case.
        monkeypatch.undo()
        assert services.cases_publish_pending() == 1
        case.refresh_from_db()
        assert case.status == CaseStatus.DECIDED
        assert not case.publish_pending
        assert Path(case.image.path).is_file()
        assert services.cases_publish_pending() == 0

    def test_a_broker_at_a_closed_port_does_not_fail_the_request(
        self, make_workflow: Any, camera: Any, settings: Any
    ) -> None:
        from tests.integration.conftest import app_use_broker

        workflow = make_workflow("closed", level=Level.FULL)
        client = camera(workflow)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        restore = app_use_broker(f"redis://127.0.0.1:{port}/0")
        try:
            response = post(client, "closed")
        finally:
            restore()
        assert response.status_code == 201, response.content
        case = Case.objects.get(id=response.json()["id"])
        assert case.publish_pending and case.status == CaseStatus.RECEIVED
        assert Path(case.image.path).is_file()

    def test_a_failing_on_commit_hook_does_not_remove_a_committed_image(
        self, make_workflow: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Whatever raises after the commit, the row exists, so its file must stay."""
        workflow = make_workflow("hook", level=Level.FULL)

        def publish_then_fail(**kwargs: Any) -> bool:
            raise RuntimeError("a later on-commit hook failed")

        monkeypatch.setattr(services, "workflow_wake", publish_then_fail)
        with pytest.raises(RuntimeError):
            services.case_create(
                workflow=workflow,
                image_data=image_bytes(),
                external_id="kept",
                metadata={},
                submitted_by=None,
            )
        case = Case.objects.get(external_id="kept")
        assert Path(case.image.path).is_file()


@pytest.mark.django_db
class TestDeadWorkerClaims:
    def processing_case(self, workflow: Any, *, claimed_by: str, seconds_ago: int = 1) -> Case:
        case = services.case_create(
            workflow=workflow,
            image_data=image_bytes(),
            external_id=None,
            metadata={},
            submitted_by=None,
        ).case
        started = timezone.now() - timedelta(seconds=seconds_ago)
        Case.objects.filter(id=case.id).update(
            status=CaseStatus.PROCESSING,
            processing_started_at=started,
            processing_attempts=1,
            claimed_by=claimed_by,
        )
        return case

    def heartbeat(self, name: str, *, seconds_ago: float = 0) -> None:
        hostname, pid = name.split(":")[:2]
        WorkerHeartbeat.objects.create(
            name=name,
            hostname=hostname,
            pid=int(pid),
            seen_at=timezone.now() - timedelta(seconds=seconds_ago),
        )

    def dead_pid(self) -> int:
        pid = 4_000_000
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return pid
            pid -= 1

    def test_a_case_claimed_by_a_dead_process_on_this_host_is_taken_over_at_once(
        self, make_workflow: Any
    ) -> None:
        workflow = make_workflow("dead", level=Level.FULL)
        claim = f"{socket.gethostname()}:{self.dead_pid()}:abcd1234"
        self.heartbeat(claim)  # fresh: the process died a moment ago
        case = self.processing_case(workflow, claimed_by=claim)

        assert services.cases_stalled(older_than=timedelta(minutes=2)) == [str(case.id)]
        assert services.cases_process(case_ids=[str(case.id)]) == 1

        case.refresh_from_db()
        assert case.status == CaseStatus.DECIDED
        assert case.claimed_by == services.worker_identity().name
        retry = case.events.get(kind="retry")
        assert retry.reason == "its worker process is gone; taken up again"
        assert retry.data["claimed_by"] == claim
        assert case.events.filter(kind="status", to_status=CaseStatus.DECIDED).count() == 1

    def test_a_case_claimed_on_another_host_waits_for_its_heartbeat_to_go_stale(
        self, make_workflow: Any, settings: Any
    ) -> None:
        settings.LOOPGATE_WORKER_LEASE_SECONDS = 30
        workflow = make_workflow("remote", level=Level.FULL)
        claim = "other-host:123:abcd1234"
        self.heartbeat(claim, seconds_ago=5)
        case = self.processing_case(workflow, claimed_by=claim)

        assert services.cases_stalled(older_than=timedelta(minutes=2)) == []
        assert services.cases_process(case_ids=[str(case.id)]) == 0
        assert Case.objects.get(id=case.id).status == CaseStatus.PROCESSING

        WorkerHeartbeat.objects.filter(name=claim).update(
            seen_at=timezone.now() - timedelta(seconds=31)
        )
        assert services.cases_stalled(older_than=timedelta(minutes=2)) == [str(case.id)]
        assert services.cases_process(case_ids=[str(case.id)]) == 1
        assert Case.objects.get(id=case.id).status == CaseStatus.DECIDED

    def test_a_case_held_by_a_live_process_is_left_to_it(self, make_workflow: Any) -> None:
        workflow = make_workflow("live", level=Level.FULL)
        claim = f"{socket.gethostname()}:{os.getppid()}:abcd1234"
        self.heartbeat(claim)
        case = self.processing_case(workflow, claimed_by=claim)
        events = case.events.count()

        assert services.cases_process(case_ids=[str(case.id)]) == 0
        assert services.cases_stalled(older_than=timedelta(minutes=2)) == []
        assert Case.objects.get(id=case.id).events.count() == events

    def test_a_claim_without_any_heartbeat_is_dead(self, make_workflow: Any) -> None:
        workflow = make_workflow("ghost", level=Level.FULL)
        case = self.processing_case(workflow, claimed_by="gone-host:77:deadbeef")
        assert services.cases_process(case_ids=[str(case.id)]) == 1

    def test_two_deliveries_after_a_death_decide_once(self, make_workflow: Any) -> None:
        workflow = make_workflow("twice", level=Level.FULL)
        claim = f"{socket.gethostname()}:{self.dead_pid()}:abcd1234"
        case = self.processing_case(workflow, claimed_by=claim)
        assert services.cases_process(case_ids=[str(case.id)]) == 1
        assert services.cases_process(case_ids=[str(case.id)]) == 0
        decided = CaseEvent.objects.filter(case=case, kind="status", to_status__in=ROUTED)
        assert decided.count() == 1

    def test_the_sweeper_puts_a_dead_process_cases_back_in_the_queue(
        self, make_workflow: Any
    ) -> None:
        from processing.tasks import cases_requeue_stalled

        workflow = make_workflow("release", level=Level.FULL)
        dead_claim = f"{socket.gethostname()}:{self.dead_pid()}:abcd1234"
        live_claim = f"{socket.gethostname()}:{os.getppid()}:abcd1234"
        self.heartbeat(live_claim)
        orphan = self.processing_case(workflow, claimed_by=dead_claim)
        held = self.processing_case(workflow, claimed_by=live_claim)

        assert services.cases_release_dead_claims() == [str(orphan.id)]
        orphan.refresh_from_db()
        assert orphan.status == CaseStatus.RECEIVED
        assert orphan.claimed_by == ""
        released = orphan.events.get(kind="status", to_status=CaseStatus.RECEIVED)
        assert released.reason == "its worker process is gone; back in the queue"
        assert released.data == {"claimed_by": dead_claim, "attempt": 1}
        assert Case.objects.get(id=held.id).status == CaseStatus.PROCESSING
        assert services.cases_release_dead_claims() == []

        Case.objects.filter(id=orphan.id).update(
            status=CaseStatus.PROCESSING, claimed_by=dead_claim
        )
        # The periodic sweep (its publishes run eagerly here) releases and routes it.
        cases_requeue_stalled()
        assert Case.objects.get(id=orphan.id).status == CaseStatus.DECIDED
        assert Case.objects.get(id=held.id).status == CaseStatus.PROCESSING

    def test_claiming_records_the_heartbeat(self, make_workflow: Any) -> None:
        workflow = make_workflow("beat", level=Level.FULL)
        case = services.case_create(
            workflow=workflow,
            image_data=image_bytes(),
            external_id=None,
            metadata={},
            submitted_by=None,
        ).case
        services.cases_process(case_ids=[str(case.id)])
        me = WorkerHeartbeat.objects.get(name=services.worker_identity().name)
        assert me.last_claim_at is not None
        assert me.pid == os.getpid()

    def test_old_heartbeats_are_pruned(self) -> None:
        self.heartbeat("old:1:a", seconds_ago=2 * 86400)
        self.heartbeat("new:2:b", seconds_ago=10)
        assert services.worker_heartbeats_prune(older_than=timedelta(days=1)) == 1
        assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["new:2:b"]


@pytest.mark.django_db
def test_the_sweeper_queues_a_waiting_case_once_per_stall_period(make_workflow: Any) -> None:
    workflow = make_workflow("backlog", level=Level.FULL)
    case = services.case_create(
        workflow=workflow,
        image_data=image_bytes(),
        external_id=None,
        metadata={},
        submitted_by=None,
    ).case
    long_ago = timezone.now() - timedelta(minutes=10)
    Case.objects.filter(id=case.id).update(created_at=long_ago)
    assert services.cases_stalled(older_than=timedelta(minutes=2)) == [str(case.id)]
    services.cases_mark_requeued(case_ids=[str(case.id)])
    assert services.cases_stalled(older_than=timedelta(minutes=2)) == []
    Case.objects.filter(id=case.id).update(requeued_at=timezone.now() - timedelta(minutes=3))
    assert services.cases_stalled(older_than=timedelta(minutes=2)) == [str(case.id)]


@pytest.mark.django_db
def test_after_a_reconnection_waiting_cases_are_queued_again_sooner(make_workflow: Any) -> None:
    workflow = make_workflow("reconnect", level=Level.FULL)
    case = services.case_create(
        workflow=workflow,
        image_data=image_bytes(),
        external_id=None,
        metadata={},
        submitted_by=None,
    ).case
    Case.objects.filter(id=case.id).update(created_at=timezone.now() - timedelta(seconds=10))
    assert services.cases_stalled(older_than=timedelta(minutes=2)) == []
    assert services.cases_stalled(
        older_than=timedelta(minutes=2), received_older_than=timedelta(seconds=5)
    ) == [str(case.id)]


def test_the_worker_sweeps_when_it_reconnects_not_when_it_first_connects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from loopgate.celery import RecoverAfterReconnect
    from processing.tasks import cases_requeue_stalled

    sent: list[dict] = []
    monkeypatch.setattr(cases_requeue_stalled, "apply_async", lambda kwargs: sent.append(kwargs))
    step = RecoverAfterReconnect.__new__(RecoverAfterReconnect)
    step.start(SimpleNamespace(restart_count=1))
    assert sent == []
    step.start(SimpleNamespace(restart_count=2))
    assert sent == [{"received_older_than": 5.0}]
