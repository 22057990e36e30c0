"""The review API, used as clients use it: token or session auth, JSON in and out."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from review.models import Assignment, ReviewTask, Verdict
from tests.review import factories
from workflows.models import CaseStatus

pytestmark = pytest.mark.django_db


def next_url(slug):
    return f"/api/v1/workflows/{slug}/review/next/"


def verdict_url(task_id):
    return f"/api/v1/review-tasks/{task_id}/verdict/"


@pytest.fixture
def api(client_for, reviewer):
    return client_for(reviewer)


def test_next_returns_the_task_case_lease_and_labels(api, workflow, queue_case):
    case, task = queue_case(
        workflow, metadata={"line": 3, "note": "<script>alert(1)</script>"}, external_id="p-1"
    )

    response = api.post(next_url(workflow.slug), format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == task.pk
    assert body["reason"] == "human_only"
    assert body["lease_seconds"] == workflow.review_lease_seconds
    assert body["expires_at"] and body["leased_at"]
    assert body["case"]["id"] == str(case.id)
    assert body["case"]["external_id"] == "p-1"
    assert body["case"]["image_url"] == f"/api/v1/cases/{case.id}/image/"
    assert body["case"]["metadata"] == {"line": 3, "note": "<script>alert(1)</script>"}
    assert body["case"]["created_at"]
    # Keys from workflows.labels.label_keys: a digit each, and a free letter that is
    # neither a screen key nor one that reads like a digit (o, l).
    assert [(entry["label"], entry["keys"], entry["key"]) for entry in body["labels"]] == [
        ("ok", ["1", "k"], "1"),
        ("scratch", ["2", "c"], "2"),
        ("crack", ["3", "r"], "3"),
        ("stain", ["4", "t"], "4"),
    ]
    assert all(entry["color"].startswith("#") for entry in body["labels"])
    assert 0 < body["seconds_left"] <= workflow.review_lease_seconds and body["now"]
    assert body["adjudication"] is False
    assert "suggestion" not in body
    image = api.get(body["case"]["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


def test_next_is_204_when_the_queue_is_empty(api, workflow):
    response = api.post(next_url(workflow.slug), format="json")
    assert response.status_code == 204 and response.content == b""


def test_next_with_after_prefetches_a_second_case(api, workflow, queue_case):
    queue_case(workflow)
    queue_case(workflow)
    current = api.post(next_url(workflow.slug), format="json").json()
    prefetched = api.post(next_url(workflow.slug), {"after": current["id"]}, format="json").json()
    assert prefetched["id"] != current["id"]
    again = api.post(next_url(workflow.slug), format="json").json()
    assert again["id"] == current["id"]


def test_full_round_verdict_decides_and_is_listed(api, workflow, queue_case):
    case, _ = queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()

    response = api.post(
        verdict_url(task["id"]), {"label": "crack", "comment": "along the edge"}, format="json"
    )

    assert response.status_code == 201
    verdict = response.json()
    assert verdict["label"] == "crack" and verdict["comment"] == "along the edge"
    assert verdict["case"] == str(case.id) and verdict["undoable"] is True
    decided = api.get(f"/api/v1/cases/{case.id}/").json()
    assert decided["status"] == "decided"
    assert decided["decision"]["label"] == "crack" and decided["decision"]["source"] == "human"
    recent = api.get(f"/api/v1/workflows/{workflow.slug}/review/verdicts/").json()
    assert [v["id"] for v in recent] == [verdict["id"]]


def test_unknown_label_is_400_naming_the_allowed_labels(api, workflow, queue_case):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    response = api.post(verdict_url(task["id"]), {"label": "dent"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_label" and error["field"] == "label"
    assert "ok, scratch, crack, stain" in error["message"]
    assert not Verdict.objects.exists()


def test_missing_label_is_400(api, workflow, queue_case):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    response = api.post(verdict_url(task["id"]), {"comment": "x"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "label"


def test_a_verdict_on_a_task_not_assigned_to_you_is_409(
    client_for, workflow, reviewer, make_reviewer, queue_case
):
    queue_case(workflow)
    task = client_for(reviewer).post(next_url(workflow.slug), format="json").json()
    other = client_for(make_reviewer("otto", workflow))
    response = other.post(verdict_url(task["id"]), {"label": "ok"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_assigned"
    assert "not assigned to you" in response.json()["error"]["message"]


def test_a_verdict_after_the_lease_ran_out_is_taken_while_nobody_else_holds_it(
    api, client_for, workflow, queue_case
):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    Assignment.objects.filter(task_id=task["id"]).update(expires_at=timezone.now())
    assert api.post(verdict_url(task["id"]), {"label": "ok"}, format="json").status_code == 201


def test_a_verdict_after_another_reviewer_took_the_case_is_410(
    api, client_for, workflow, queue_case
):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    Assignment.objects.filter(task_id=task["id"]).update(expires_at=timezone.now())
    other = client_for(factories.reviewer_create("otto", workflow))
    assert other.post(next_url(workflow.slug), format="json").json()["id"] == task["id"]
    response = api.post(verdict_url(task["id"]), {"label": "ok"}, format="json")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "lease_expired"
    assert "another reviewer" in response.json()["error"]["message"]


def test_heartbeat_renews_the_lease_and_says_the_time_left(api, workflow, queue_case):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    soon = timezone.now() + timedelta(seconds=5)
    Assignment.objects.filter(task_id=task["id"]).update(expires_at=soon)
    response = api.post(f"/api/v1/review-tasks/{task['id']}/heartbeat/", format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["seconds_left"] > workflow.review_lease_seconds - 5
    assert Assignment.objects.get(task_id=task["id"]).expires_at > soon


def test_heartbeat_on_someone_elses_task_is_409(api, client_for, workflow, queue_case):
    queue_case(workflow)
    other = client_for(factories.reviewer_create("otto", workflow))
    task = other.post(next_url(workflow.slug), format="json").json()
    response = api.post(f"/api/v1/review-tasks/{task['id']}/heartbeat/", format="json")
    assert response.status_code == 409


def test_queue_counts_match_the_queue_page(api, client, workflow, reviewer, queue_case):
    for _ in range(3):
        queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    api.post(f"/api/v1/review-tasks/{task['id']}/skip/", {"reason": "blurry"}, format="json")
    counts = api.get(f"/api/v1/workflows/{workflow.slug}/review/queue/").json()
    assert (counts["open"], counts["available"], counts["cooling"]) == (3, 2, 1)
    client.force_login(reviewer)
    page = client.get("/").content.decode()
    assert 'data-depth="2"' in page and 'data-cooling="1"' in page


def test_a_verdict_on_a_decided_case_is_409(api, workflow, queue_case):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    assert api.post(verdict_url(task["id"]), {"label": "ok"}, format="json").status_code == 201
    response = api.post(verdict_url(task["id"]), {"label": "ok"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_decided"


def test_another_workflows_reviewer_gets_404_everywhere(client_for, api, workflow, queue_case):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    elsewhere = factories.workflow_create("elsewhere")
    outsider = client_for(factories.reviewer_create("olga", elsewhere))

    assert outsider.post(next_url(workflow.slug), format="json").status_code == 404
    assert outsider.post(verdict_url(task["id"]), {"label": "ok"}, format="json").status_code == 404
    missing = outsider.post(verdict_url(987654), {"label": "ok"}, format="json")
    assert missing.status_code == 404
    body = outsider.post(verdict_url(task["id"]), {"label": "ok"}, format="json").json()
    assert body["error"]["message"] == f"review task {task['id']} not found"
    skip = outsider.post(f"/api/v1/review-tasks/{task['id']}/skip/", {"reason": "x"}, format="json")
    assert skip.status_code == 404
    assert outsider.get(f"/api/v1/workflows/{workflow.slug}/review/stats/").status_code == 404
    assert outsider.get(task["case"]["image_url"]).status_code == 404


def test_a_submitter_may_not_review(client_for, workflow, queue_case, make_user, member):
    camera = make_user("camera")
    member(camera, workflow, submit=True)
    response = client_for(camera).post(next_url(workflow.slug), format="json")
    assert response.status_code == 403


def test_anonymous_is_refused(workflow):
    assert APIClient().post(next_url(workflow.slug), format="json").status_code in (401, 403)


def test_skip_and_release(api, workflow, queue_case):
    queue_case(workflow)
    queue_case(workflow)
    first = api.post(next_url(workflow.slug), format="json").json()
    no_reason = api.post(f"/api/v1/review-tasks/{first['id']}/skip/", {}, format="json")
    assert no_reason.status_code == 400
    skipped = api.post(
        f"/api/v1/review-tasks/{first['id']}/skip/", {"reason": "glare"}, format="json"
    )
    assert skipped.status_code == 204
    second = api.post(next_url(workflow.slug), format="json").json()
    assert second["id"] != first["id"]
    released = api.post(f"/api/v1/review-tasks/{second['id']}/release/")
    assert released.status_code == 204
    assert api.post(next_url(workflow.slug), format="json").json()["id"] == second["id"]


def test_undo_hands_the_case_back_then_refuses_a_second_time(api, workflow, queue_case):
    case, _ = queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    verdict = api.post(verdict_url(task["id"]), {"label": "ok"}, format="json").json()

    response = api.post(f"/api/v1/verdicts/{verdict['id']}/undo/")

    assert response.status_code == 200
    body = response.json()
    assert body["verdict"]["retracted_at"] is not None and body["verdict"]["undoable"] is False
    assert body["task"]["id"] == task["id"] and body["task"]["case"]["id"] == str(case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.IN_REVIEW
    again = api.post(f"/api/v1/verdicts/{verdict['id']}/undo/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_undone"
    redo = api.post(verdict_url(task["id"]), {"label": "stain"}, format="json")
    assert redo.status_code == 201


def test_undo_out_of_the_window_is_410(api, workflow, queue_case, settings):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    verdict = api.post(verdict_url(task["id"]), {"label": "ok"}, format="json").json()
    Verdict.objects.filter(pk=verdict["id"]).update(
        created_at=timezone.now() - timedelta(seconds=settings.LOOPGATE_UNDO_WINDOW_SECONDS + 5)
    )
    response = api.post(f"/api/v1/verdicts/{verdict['id']}/undo/")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "undo_window_passed"


def test_undo_of_someone_elses_verdict_is_404(client_for, api, workflow, make_reviewer, queue_case):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    verdict = api.post(verdict_url(task["id"]), {"label": "ok"}, format="json").json()
    other = client_for(make_reviewer("otto", workflow))
    assert other.post(f"/api/v1/verdicts/{verdict['id']}/undo/").status_code == 404


# --- What the reviewer may see of the model -------------------------------------------


def _assert_no_suggestion(body: dict, prediction_confidence: float) -> None:
    text = json.dumps(body)
    assert "suggestion" not in body
    for key in ("confidence", "scores", "model_version", "predictions"):
        assert key not in text
    assert str(prediction_confidence) not in text


def test_shadow_mode_hides_the_suggestion(client_for, make_reviewer, stub_model_version):
    shadow = factories.workflow_create("shadowed", level="shadow")
    reviewer = make_reviewer("sam", shadow)
    case, _ = factories.case_in_review(shadow, prediction=(stub_model_version, "crack", 0.8731))
    api = client_for(reviewer)

    body = api.post(next_url(shadow.slug), format="json").json()

    assert body["reason"] == "shadow"
    _assert_no_suggestion(body, 0.8731)
    case_body = api.get(f"/api/v1/cases/{case.id}/").json()
    assert case_body["predictions"] == []
    assert "0.8731" not in json.dumps(case_body)


def test_assistance_shows_the_suggestion(client_for, make_reviewer, stub_model_version):
    assisted = factories.workflow_create("assisted", level="assistance")
    reviewer = make_reviewer("ava", assisted)
    factories.case_in_review(assisted, prediction=(stub_model_version, "crack", 0.8731))

    body = client_for(reviewer).post(next_url(assisted.slug), format="json").json()

    assert body["reason"] == "assistance"
    assert body["suggestion"]["label"] == "crack"
    assert body["suggestion"]["confidence"] == pytest.approx(0.8731)
    assert body["suggestion"]["scores"]["crack"] == pytest.approx(0.8731)
    assert body["suggestion"]["model_version"] == stub_model_version.tag


def test_audit_tasks_are_blind_even_at_a_suggesting_level(
    client_for, make_reviewer, stub_model_version
):
    partial = factories.workflow_create("partial", level="partial")
    reviewer = make_reviewer("aud", partial)
    _, task = factories.case_in_review(
        partial, prediction=(stub_model_version, "ok", 0.9911), show_suggestion=False
    )
    ReviewTask.objects.filter(pk=task.pk).update(kind="audit", reason="audit")
    body = client_for(reviewer).post(next_url(partial.slug), format="json").json()
    _assert_no_suggestion(body, 0.9911)


def test_shadow_end_to_end_through_the_model(
    make_workflow, make_user, member, client_for, django_capture_on_commit_callbacks
):
    from tests.conftest import image_bytes

    workflow = make_workflow("shadow-e2e", level="shadow")
    camera, reviewer = make_user("camera"), make_user("rev")
    member(camera, workflow, submit=True)
    member(reviewer, workflow, review=True)
    with django_capture_on_commit_callbacks(execute=True):
        created = client_for(camera).post(
            f"/api/v1/workflows/{workflow.slug}/cases/",
            {"image": _upload(image_bytes("crack", seed=3))},
            format="multipart",
        )
    assert created.status_code == 201
    case = client_for(camera).get(f"/api/v1/cases/{created.json()['id']}/").json()
    assert case["status"] == "in_review"
    prediction = case["predictions"][0]

    body = client_for(reviewer).post(next_url(workflow.slug), format="json").json()

    assert body["case"]["id"] == created.json()["id"]
    _assert_no_suggestion(body, prediction["confidence"])


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("part.png", data, content_type="image/png")


# --- Session auth and CSRF ----------------------------------------------------------


def test_session_clients_need_the_csrf_token(workflow, reviewer, queue_case):
    queue_case(workflow)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reviewer)
    refused = client.post(next_url(workflow.slug), {}, format="json")
    assert refused.status_code == 403
    page = client.get(f"/review/{workflow.slug}/")
    token = page.cookies["csrftoken"].value
    allowed = client.post(next_url(workflow.slug), {}, format="json", HTTP_X_CSRFTOKEN=token)
    assert allowed.status_code == 200


# --- Stats --------------------------------------------------------------------------


def test_stats_report_agreement_gold_and_throughput(client_for, make_reviewer):
    from decisions.stats import cohen_kappa, percent_agreement
    from review import services

    workflow = factories.workflow_create("pairs", consensus_required=2)
    admin = make_reviewer("ada", workflow, admin=True)
    ann, bob = make_reviewer("ann", workflow), make_reviewer("bob", workflow)
    pairs = [("ok", "ok"), ("crack", "crack"), ("ok", "stain"), ("stain", "stain"), ("ok", "ok")]
    for first, second in pairs:
        _, task = factories.case_in_review(workflow)
        for reviewer, label in ((ann, first), (bob, second)):
            assert services.review_next(workflow=workflow, reviewer=reviewer).task_id == task.pk
            services.verdict_submit(task_id=task.pk, reviewer=reviewer, label=label)

    body = client_for(admin).get(f"/api/v1/workflows/{workflow.slug}/review/stats/").json()

    agreement = body["agreement"]
    assert agreement["cases"] == 5
    assert agreement["cohen_kappa"] == pytest.approx(
        cohen_kappa([p[0] for p in pairs], [p[1] for p in pairs])
    )
    assert agreement["percent_agreement"] == pytest.approx(percent_agreement(pairs))
    assert agreement["percent_agreement"] == pytest.approx(0.8)
    assert agreement["fleiss_kappa"] is not None and agreement["fleiss_raters"] == 2
    assert body["throughput"]["verdicts_last_24h"] == 10
    assert {r["reviewer"] for r in body["throughput"]["reviewers"]} == {"ann", "bob"}
    assert body["queue"]["depth"] == 1  # the disagreement waits for a third reviewer

    own = client_for(ann).get(f"/api/v1/workflows/{workflow.slug}/review/stats/").json()
    assert [r["reviewer"] for r in own["throughput"]["reviewers"]] == ["ann"]


def test_change_request_api(api, client_for, workflow, queue_case):
    queue_case(workflow)
    task = api.post(next_url(workflow.slug), format="json").json()
    verdict = api.post(verdict_url(task["id"]), {"label": "ok"}, format="json").json()
    url = f"/api/v1/verdicts/{verdict['id']}/change-request/"
    assert api.post(url, {"label": "crack"}, format="json").status_code == 400
    created = api.post(url, {"label": "crack", "reason": "missed it"}, format="json")
    assert created.status_code == 201
    assert (created.json()["from_label"], created.json()["to_label"]) == ("ok", "crack")
    again = api.post(url, {"label": "stain", "reason": "twice"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "change_already_requested"
    stranger = client_for(factories.reviewer_create("otto", workflow))
    assert stranger.post(url, {"label": "crack", "reason": "x"}, format="json").status_code == 404
