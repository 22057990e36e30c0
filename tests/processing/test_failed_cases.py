"""The case state machine over every pair of statuses, and the ``failed`` state: a case
whose stored image is gone or unreadable fails (nobody could judge it), with the reason
and an event; a workflow admin retries it once the image is back."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from decisions.routing import Level
from processing import services
from review.models import ReviewTask
from tests.conftest import image_bytes
from workflows import services as case_services
from workflows.models import ActorType, Case, CaseEvent, CaseStatus

pytestmark = pytest.mark.django_db

TABLE = case_services.CASE_TRANSITIONS


def new_case(workflow: Any, *, seed: int = 0) -> Case:
    return services.case_create(
        workflow=workflow,
        image_data=image_bytes(seed=seed),
        external_id=None,
        metadata={},
        submitted_by=None,
    ).case


def status_moves(case: Case) -> list[tuple[str, str]]:
    return list(
        CaseEvent.objects.filter(case=case, kind="status").values_list("from_status", "to_status")
    )


@pytest.mark.parametrize(("start", "target"), list(itertools.product(CaseStatus.values, repeat=2)))
def test_each_case_move_is_allowed_by_the_table_or_refused(
    make_workflow: Any, start: str, target: str
) -> None:
    workflow = make_workflow("pairs", level=Level.HUMAN_ONLY, serving=False)
    case = new_case(workflow)
    Case.objects.filter(id=case.id).update(status=start)
    events = case.events.count()
    with transaction.atomic():
        case = Case.objects.select_for_update().get(id=case.id)
        if target in TABLE[start]:
            case_services.case_transition(
                case=case, to_status=target, actor_type=ActorType.SYSTEM, reason="table test"
            )
        else:
            with pytest.raises(case_services.InvalidTransition):
                case_services.case_transition(
                    case=case, to_status=target, actor_type=ActorType.SYSTEM, reason="table test"
                )
    allowed = target in TABLE[start]
    assert Case.objects.get(id=case.id).status == (target if allowed else start)
    assert case.events.count() == events + allowed
    if allowed:
        assert status_moves(case)[-1] == (start, target)


def test_a_case_whose_image_is_gone_fails_and_the_rest_of_its_batch_goes_on(
    make_workflow: Any,
) -> None:
    workflow = make_workflow("lost", level=Level.PARTIAL)
    lost, fine = new_case(workflow, seed=1), new_case(workflow, seed=2)
    lost.image.storage.delete(lost.image.name)

    assert services.cases_process(case_ids=[str(lost.id), str(fine.id)]) == 1

    lost.refresh_from_db()
    fine.refresh_from_db()
    assert lost.status == CaseStatus.FAILED
    assert "the stored image could not be read" in lost.failure_reason
    assert status_moves(lost)[-2:] == [
        (CaseStatus.RECEIVED, CaseStatus.PROCESSING),
        (CaseStatus.PROCESSING, CaseStatus.FAILED),
    ]
    event = CaseEvent.objects.filter(case=lost).last()
    assert event.actor_type == ActorType.SYSTEM and event.reason == lost.failure_reason
    assert not ReviewTask.objects.filter(case=lost).exists()
    assert not lost.predictions.exists()
    assert fine.status in (CaseStatus.DECIDED, CaseStatus.IN_REVIEW)


def test_an_unreadable_image_fails_the_case(make_workflow: Any) -> None:
    workflow = make_workflow("garbled", level=Level.FULL)
    case = new_case(workflow)
    storage, name = case.image.storage, case.image.name
    storage.delete(name)
    storage.save(name, ContentFile(b"\x89PNG\r\n\x1a\n" + b"\0" * 64))

    services.cases_process(case_ids=[str(case.id)])

    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED and case.failure_reason


def test_a_duplicate_delivery_of_a_failed_case_does_nothing(make_workflow: Any) -> None:
    workflow = make_workflow("twice", level=Level.PARTIAL)
    case = new_case(workflow)
    case.image.storage.delete(case.image.name)
    services.cases_process(case_ids=[str(case.id)])
    events = case.events.count()
    assert services.cases_process(case_ids=[str(case.id)]) == 0
    assert case.events.count() == events
    assert Case.objects.get(id=case.id).status == CaseStatus.FAILED


@pytest.fixture
def failed_case(make_workflow: Any) -> Case:
    workflow = make_workflow("retry", level=Level.PARTIAL)
    case = new_case(workflow)
    storage, name = case.image.storage, case.image.name
    with storage.open(name, "rb") as handle:
        data = handle.read()
    storage.delete(name)
    services.cases_process(case_ids=[str(case.id)])
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    # The file comes back (restored from a backup, a storage outage over).
    storage.save(name, ContentFile(data))
    return case


def test_a_workflow_admin_retries_a_failed_case(
    failed_case: Case,
    make_user: Any,
    member: Any,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    admin = make_user("ada")
    member(admin, failed_case.workflow, admin=True)
    reason = failed_case.failure_reason

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin).post(f"/api/v1/cases/{failed_case.id}/retry/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == CaseStatus.RECEIVED
    assert response.json()["failure_reason"] == ""
    retried = CaseEvent.objects.get(
        case=failed_case, from_status=CaseStatus.FAILED, to_status=CaseStatus.RECEIVED
    )
    assert retried.actor == admin and retried.actor_type == ActorType.USER
    assert retried.data == {"failure_reason": reason}
    failed_case.refresh_from_db()
    # The queued message ran on commit: the case was scored and routed this time.
    assert failed_case.status in (CaseStatus.DECIDED, CaseStatus.IN_REVIEW)
    assert failed_case.processing_attempts == 1
    assert failed_case.predictions.count() == 1


def test_only_admins_retry_and_only_failed_cases(
    failed_case: Case, make_user: Any, member: Any, client_for: Any
) -> None:
    reviewer, admin = make_user("rita"), make_user("ada")
    member(reviewer, failed_case.workflow, review=True, submit=True)
    member(admin, failed_case.workflow, admin=True)
    outsider = make_user("otto")

    assert client_for(reviewer).post(f"/api/v1/cases/{failed_case.id}/retry/").status_code == 403
    assert client_for(outsider).post(f"/api/v1/cases/{failed_case.id}/retry/").status_code == 404
    assert Case.objects.get(id=failed_case.id).status == CaseStatus.FAILED

    assert client_for(admin).post(f"/api/v1/cases/{failed_case.id}/retry/").status_code == 200
    again = client_for(admin).post(f"/api/v1/cases/{failed_case.id}/retry/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_failed"
