"""The access cache (kernel.readcache, D125): a request is authorised from cached rows,
and every change that takes a right away is seen by the very next request."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.services import api_token_revoke
from kernel.readcache import access_key, cached_read, invalidate, request_memo
from tests.conftest import cache_calls, image_bytes
from workflows.models import WorkflowMembership

pytestmark = pytest.mark.django_db


def upload(seed: int) -> io.BytesIO:
    buffer = io.BytesIO(image_bytes("ok", seed=seed))
    buffer.name = "part.png"
    return buffer


def submit(client: Any, seed: int) -> Any:
    return client.post("/api/v1/workflows/line/cases/", {"image": upload(seed)}, format="multipart")


def access_queries(client: Any, seed: int) -> list[str]:
    """The statements a submission sends to read the token, workflow and membership."""
    with CaptureQueriesContext(connection) as captured:
        assert submit(client, seed).status_code == 201
    tables = ("accounts_apitoken", "workflows_workflow", "workflows_workflowmembership")
    return [q["sql"] for q in captured.captured_queries if any(t in q["sql"] for t in tables)]


@pytest.fixture
def camera(make_user: Any, make_workflow: Any, member: Any, client_for: Any) -> dict[str, Any]:
    workflow = make_workflow("line", level="shadow")
    user = make_user("camera")
    membership = member(user, workflow, submit=True, review=True, admin=True)
    client = client_for(user)
    assert submit(client, 1).status_code == 201  # fills the cache
    return {"workflow": workflow, "user": user, "membership": membership, "client": client}


def test_a_repeated_request_reads_no_access_rows(camera: dict[str, Any]) -> None:
    assert access_queries(camera["client"], 2) == []


def test_a_revoked_token_is_refused_at_once(camera: dict[str, Any]) -> None:
    api_token_revoke(token_id=camera["client"].api_token.pk)
    response = submit(camera["client"], 3)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_a_deleted_token_is_refused_at_once(camera: dict[str, Any]) -> None:
    camera["client"].api_token.delete()
    assert submit(camera["client"], 3).status_code == 401


def test_a_deactivated_user_is_refused_at_once(camera: dict[str, Any]) -> None:
    user = camera["user"]
    user.is_active = False
    user.save()
    assert submit(camera["client"], 3).status_code == 401


def test_a_removed_member_is_refused_at_once(camera: dict[str, Any]) -> None:
    camera["membership"].delete()
    assert submit(camera["client"], 3).status_code == 404


def test_a_member_who_lost_a_right_is_refused_at_once(camera: dict[str, Any]) -> None:
    membership = camera["membership"]
    membership.can_submit = False
    membership.save()
    assert submit(camera["client"], 3).status_code == 403


def test_a_queryset_delete_of_members_is_seen(camera: dict[str, Any]) -> None:
    WorkflowMembership.objects.filter(workflow=camera["workflow"]).delete()
    assert submit(camera["client"], 3).status_code == 404


def test_an_archived_workflow_takes_no_case_at_once(camera: dict[str, Any]) -> None:
    from workspace.services import workflow_archive

    workflow_archive(workflow=camera["workflow"], actor=camera["user"])
    response = submit(camera["client"], 3)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "archived"


def test_a_new_member_is_let_in_at_once(
    make_user: Any, make_workflow: Any, member: Any, client_for: Any
) -> None:
    workflow = make_workflow("line", level="shadow")
    user = make_user("late")
    client = client_for(user)
    assert submit(client, 1).status_code == 404  # "not a member" is cached too
    member(user, workflow, submit=True)
    assert submit(client, 2).status_code == 201


def test_a_level_change_is_seen_by_the_next_case(camera: dict[str, Any]) -> None:
    workflow = camera["workflow"]
    workflow.level = "human_only"
    workflow.save(update_fields=["level"])
    response = submit(camera["client"], 3)
    assert response.status_code == 201
    # Human only: routed to review in the request, not queued for the model.
    assert response.json()["status"] == "in_review"


def test_an_invalidated_key_is_not_filled_again_while_it_settles() -> None:
    """A reader that loaded the old row before the write committed must not cache it."""
    key = access_key("test", "settle")
    invalidate([key])
    assert cached_read(key, lambda: "stale row") == "stale row"
    assert cache.get(key) != "stale row"
    assert cached_read(key, lambda: "fresh row") == "fresh row"


def test_a_read_inside_a_transaction_is_cached_only_when_it_commits(
    django_capture_on_commit_callbacks: Any,
) -> None:
    key = access_key("test", "atomic")
    with pytest.raises(RuntimeError), transaction.atomic():
        assert cached_read(key, lambda: "rolled back") == "rolled back"
        raise RuntimeError
    assert cache.get(key) is None
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert cached_read(key, lambda: "committed") == "committed"
        assert cache.get(key) is None  # not before the commit
    assert cache.get(key) == ("committed",)


def test_a_transaction_longer_than_the_settle_time_caches_nothing(
    django_capture_on_commit_callbacks: Any, settings: Any, monkeypatch: Any
) -> None:
    """A write that committed after the read left its tombstone for the settle time only:
    a later commit must not put the old row back."""
    import time

    settings.LOOPGATE_ACCESS_CACHE_SETTLE_SECONDS = 5
    key = access_key("test", "long")
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert cached_read(key, lambda: "read long ago") == "read long ago"
        clock[0] += 6
    assert cache.get(key) is None


def test_a_write_in_the_reading_transaction_keeps_the_read_out(
    django_capture_on_commit_callbacks: Any,
) -> None:
    key = access_key("test", "own-write")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert cached_read(key, lambda: "before the write") == "before the write"
        invalidate([key])
    assert not isinstance(cache.get(key), tuple)


# --- One read per key and request (request_memo, D142) -----------------------------------


def test_a_request_reads_each_access_entry_from_the_cache_once(
    camera: dict[str, Any], monkeypatch: Any
) -> None:
    """A submission checks the membership in the view and again in the service; the
    second read comes from the request's memo, not from Redis."""
    reads = cache_calls(monkeypatch, "get")
    assert submit(camera["client"], 4).status_code == 201
    access = [key for key in reads if key.startswith("access:")]
    assert access, "the access rows come from the cache"
    assert len(access) == len(set(access)), access
    # Outside a request nothing is remembered: each read asks the cache.
    reads.clear()
    key = access_key("memo-test")
    cache.set(key, ("row",))
    assert cached_read(key, lambda: None) == "row"
    assert cached_read(key, lambda: None) == "row"
    assert reads.count(key) == 2


def test_within_a_request_a_change_is_seen_by_the_next_read(camera: dict[str, Any]) -> None:
    from workflows.access import membership_of

    user, workflow = camera["user"], camera["workflow"]
    with request_memo():
        assert membership_of(user, workflow).can_submit
        WorkflowMembership.objects.filter(pk=camera["membership"].pk).update(can_submit=False)
        # A write outside the services is not seen within the request (nor by the cache)…
        assert membership_of(user, workflow).can_submit
        membership = WorkflowMembership.objects.get(pk=camera["membership"].pk)
        membership.save()  # …a saved row is, at once: invalidation reaches the memo.
        assert not membership_of(user, workflow).can_submit


def test_the_memo_hands_each_reader_its_own_instance(camera: dict[str, Any]) -> None:
    from workflows.access import workflow_by_slug

    with request_memo():
        first = workflow_by_slug("line")
        first.level = "full"
        second = workflow_by_slug("line")
        assert second is not first
        assert second.level == "shadow"
        assert second.pk == first.pk


def test_the_memo_keeps_nothing_read_inside_a_transaction(camera: dict[str, Any]) -> None:
    """A row loaded inside a transaction may be rolled back with it: not remembered."""
    key = access_key("memo-txn")
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return "uncommitted"

    with request_memo():
        with transaction.atomic():
            assert cached_read(key, load) == "uncommitted"
            assert cached_read(key, load) == "uncommitted"
        assert len(loads) == 2
