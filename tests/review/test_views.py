"""The reviewer pages, rendered server-side."""

import pytest

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
