"""The reviewer pages, rendered server-side."""

import pytest
from django.utils import timezone

from review.models import Verdict
from tests.review import factories

pytestmark = pytest.mark.django_db


def test_home_needs_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_home_lists_reviewable_workflows_with_queue_depth_and_age(
    client, workflow, reviewer, queue_case
):
    factories.workflow_create("not-mine")
    queue_case(workflow)
    queue_case(workflow)
    client.force_login(reviewer)

    page = client.get("/").content.decode()

    assert "Inspect" in page and "not-mine" not in page
    assert 'data-depth="2"' in page
    assert "/review/inspect/" in page


def test_home_leaves_out_archived_workflows(client, workflow, reviewer, queue_case):
    queue_case(workflow)
    workflow.archived_at = timezone.now()
    workflow.save(update_fields=["archived_at"])
    client.force_login(reviewer)

    page = client.get("/").content.decode()

    assert "/review/inspect/" not in page and 'data-depth="1"' not in page


def test_login_lands_on_the_queue_list(client, workflow, reviewer):
    response = client.post(
        "/login/", {"username": "rita", "password": "pw-for-tests-only"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert "Review queues" in response.content.decode()


def test_review_screen_renders_label_keys_and_carries_no_case(
    client, workflow, reviewer, queue_case, stub_model_version
):
    queue_case(workflow, prediction=(stub_model_version, "crack", 0.8731))
    client.force_login(reviewer)

    page = client.get("/review/inspect/").content.decode()

    assert 'data-label="scratch"' in page and "<kbd>2</kbd>" in page
    assert "csrfmiddlewaretoken" in page
    assert "0.8731" not in page and "87%" not in page


def test_review_screen_is_404_for_non_members(client, workflow, make_user):
    client.force_login(make_user("stranger"))
    assert client.get("/review/inspect/").status_code == 404


def test_duration_filter():
    from review.templatetags.review_format import duration

    assert duration(None) == "—"
    assert duration(42.7) == "42 s"
    assert duration(600) == "10 min"
    assert duration(3 * 3600 + 300) == "3 h 5 min"
    assert duration(2 * 86400 + 4 * 3600) == "2 d 4 h"


def test_history_pages_and_filters_my_verdicts(client, workflow, reviewer, make_reviewer):
    from review import services, views

    other = make_reviewer("otto", workflow)
    for index in range(views.HISTORY_PAGE_SIZE + 10):
        factories.case_in_review(workflow, external_id=f"h-{index:03d}")
        who = reviewer if index % 25 else other
        task = services.review_next(workflow=workflow, reviewer=who)
        services.verdict_submit(
            task_id=task.task_id, reviewer=who, label="crack" if index % 2 else "ok"
        )
    mine = Verdict.objects.filter(reviewer=reviewer).count()
    client.force_login(reviewer)

    first = client.get("/review/inspect/history/").content.decode()
    assert f"{mine} verdicts" in first and "page 1 of 2" in first
    assert "h-000" not in first  # otto's, not mine
    second = client.get("/review/inspect/history/?page=2").content.decode()
    assert "page 2 of 2" in second

    cracks = client.get("/review/inspect/history/?label=crack").content.decode()
    count = Verdict.objects.filter(reviewer=reviewer, label="crack").count()
    assert f"{count} verdicts" in cracks
    # Nonsense filters are ignored, never an error.
    assert client.get("/review/inspect/history/?label=nope&page=x").status_code == 200


def test_history_is_404_for_non_members(client, workflow, make_user):
    client.force_login(make_user("stranger"))
    assert client.get("/review/inspect/history/").status_code == 404
