"""Repeated images: a perceptual hash at ingest links exact and near copies to the first
case of the workflow (docs/decisions.md D56)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.conftest import image_bytes
from workflows.images import image_phash, phash_distance
from workflows.models import Case, CaseEvent

pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "part.png") -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def reencoded(data: bytes, quality: int = 70) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
def submit(make_user: Any, make_workflow: Any, member: Any, client_for: Any) -> Any:
    workflow = make_workflow("line", level="human_only", serving=False)
    other = make_workflow("other", level="human_only", serving=False)
    user = make_user("camera")
    member(user, workflow, submit=True)
    member(user, other, submit=True)
    client = client_for(user)

    def post(data: bytes, external_id: str, slug: str = "line") -> Case:
        response = client.post(
            f"/api/v1/workflows/{slug}/cases/",
            {"image": upload(data), "external_id": external_id},
            format="multipart",
        )
        assert response.status_code == 201, response.content
        assert "duplicate_of" in response.json()
        return Case.objects.get(pk=response.json()["id"])

    return post


def test_a_new_image_is_no_duplicate_and_carries_its_hash(submit: Any, clean_media: None) -> None:
    case = submit(image_bytes("ok", seed=1), "a")
    assert len(case.phash) == 16 and case.duplicate_of is None
    event = CaseEvent.objects.get(case=case, kind="received")
    assert event.data["phash"] == case.phash and event.data["duplicate_of"] is None


def test_exact_and_near_copies_link_to_the_first_case(submit: Any, clean_media: None) -> None:
    original = image_bytes("scratch", seed=2)
    first = submit(original, "first")
    again = submit(original, "again")
    jpeg = submit(reencoded(original), "again-as-jpeg")
    third = submit(original, "third")
    different = submit(image_bytes("scratch", seed=3), "different")
    assert again.duplicate_of_id == first.pk
    assert jpeg.duplicate_of_id == first.pk, phash_distance(jpeg.phash, first.phash)
    assert third.duplicate_of_id == first.pk, "linked to the first case, not a copy of it"
    assert different.duplicate_of_id is None


def test_duplicates_are_per_workflow(submit: Any, clean_media: None) -> None:
    original = image_bytes("ok", seed=4)
    submit(original, "x")
    elsewhere = submit(original, "x", slug="other")
    assert elsewhere.duplicate_of_id is None


def test_distinct_demo_images_stay_far_apart() -> None:
    """The near threshold (4 bits) sits well below the distance of distinct images."""
    hashes = [
        image_phash(Image.open(io.BytesIO(image_bytes(label, seed=seed))))
        for seed in range(40)
        for label in ("ok", "crack")
    ]
    closest = min(phash_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    assert closest > 4


def test_the_lookup_without_postgresql_gives_the_same_answers(
    submit: Any, clean_media: None
) -> None:
    """The embedded default (SQLite) has no bit strings: its lookup, in Python over the
    same window, must find the same first case for exact, near and new images."""
    from workflows.models import Workflow
    from workflows.services import case_duplicate_root, case_duplicate_root_portable

    original = image_bytes("scratch", seed=7)
    first = submit(original, "first")
    submit(original, "again")
    jpeg = submit(reencoded(original), "jpeg")
    other = submit(image_bytes("ok", seed=8), "other")
    workflow = Workflow.objects.get(slug="line")
    new = image_phash(Image.open(io.BytesIO(image_bytes("crack", seed=9))))
    probes = [first.phash, jpeg.phash, other.phash, new]
    for phash in probes:
        assert case_duplicate_root_portable(workflow=workflow, phash=phash) == case_duplicate_root(
            workflow=workflow, phash=phash
        ), phash
    assert case_duplicate_root_portable(workflow=workflow, phash=jpeg.phash) == first.pk
