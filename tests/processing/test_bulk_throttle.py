"""A bulk request spends one unit of the caller's rate per item (D115), all or nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.cache import cache

from tests.review.factories import tiny_png
from workflows.models import Case

pytestmark = pytest.mark.django_db

BULK = "/api/v1/workflows/line/cases/bulk/"
SINGLE = "/api/v1/workflows/line/cases/"
counter = iter(range(10_000))


def png() -> bytes:
    i = next(counter)
    return tiny_png(colour=(i % 256, (i // 256) % 256, 33), size=8)


def part(name: str) -> io.BytesIO:
    buffer = io.BytesIO(png())
    buffer.name = name
    return buffer


def bulk(client: Any, n: int) -> Any:
    return client.post(BULK, {"images": [part(f"{i}.png") for i in range(n)]}, format="multipart")


@pytest.fixture
def camera(
    make_workflow: Any, make_user: Any, member: Any, client_for: Any, monkeypatch: Any
) -> Any:
    from loopgate.throttling import CostedRateThrottle

    # The rate's clock stands still: the counts below are exact, however slow the run.
    monkeypatch.setattr(CostedRateThrottle, "timer", lambda self: 1_000_000.0)
    cache.clear()
    workflow = make_workflow("line", level="shadow")
    user = make_user("camera")
    member(user, workflow, submit=True)
    client = client_for(user)
    client.api_token.throttle_rate = "10/min"
    client.api_token.save()
    return client


def test_items_spend_the_rate_and_a_batch_that_does_not_fit_stores_nothing(camera: Any) -> None:
    assert bulk(camera, 4).status_code == 207
    assert bulk(camera, 4).status_code == 207
    refused = bulk(camera, 4)  # 8 spent, 2 left: four items do not fit
    assert refused.status_code == 429, refused.content
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert Case.objects.count() == 8
    # Single requests and bulk items share the one budget.
    single = camera.post(SINGLE, {"image": part("one.png")}, format="multipart")
    assert single.status_code == 201
    assert bulk(camera, 2).status_code == 429  # 9 spent, 1 left
    assert bulk(camera, 1).status_code == 207
    assert camera.post(SINGLE, {"image": part("two.png")}, format="multipart").status_code == 429
    assert Case.objects.count() == 10


def test_a_batch_larger_than_the_whole_rate_is_refused_with_its_limit(camera: Any) -> None:
    response = bulk(camera, 11)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "images"
    assert "send at most 10 in one request" in error["message"]
    assert not Case.objects.exists()
    # Nothing was spent: the whole rate is still there.
    assert bulk(camera, 10).status_code == 207


def test_a_request_refused_before_its_items_are_counted_spends_nothing(
    camera: Any, make_workflow: Any
) -> None:
    # The rate is charged once the caller may submit here and the item count is within
    # the bulk limits; a request to a workflow the caller is not a member of is not.
    make_workflow("elsewhere")
    response = camera.post(
        "/api/v1/workflows/elsewhere/cases/bulk/",
        {"images": [part(f"{i}.png") for i in range(10)]},
        format="multipart",
    )
    assert response.status_code == 404
    assert bulk(camera, 10).status_code == 207
