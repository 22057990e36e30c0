"""Example images of the labels: added and removed by a workflow's admins (API, settings
page, Django admin, all through one service), checked like case images, shown to the
workflow's members only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from tests.conftest import image_bytes
from workflows.models import LabelExample
from workspace.services import LABEL_EXAMPLES_PER_LABEL, label_example_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def home(make_workflow: Any, make_user: Any, member: Any, client_for: Any) -> dict[str, Any]:
    workflow = make_workflow("home", level="human_only", serving=False)
    other = make_workflow("other", level="human_only", serving=False)
    people = {name: make_user(name) for name in ("ada", "rita", "olga")}
    member(people["ada"], workflow, review=True, admin=True)
    member(people["rita"], workflow, review=True)
    member(people["olga"], other, review=True, admin=True)
    clients = {name: client_for(user) for name, user in people.items()}
    return {"workflow": workflow, "other": other, **people, "clients": clients}


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "label-examples"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def upload(client: Any, label: str, data: bytes, *, caption: str = "", name: str = "x.png"):
    return client.post(
        reverse("label-example-list", args=["home"]),
        {"label": label, "caption": caption, "image": SimpleUploadedFile(name, data)},
        format="multipart",
    )


def test_an_admin_adds_an_example_and_members_see_it(home: dict[str, Any]) -> None:
    data = image_bytes("crack", seed=3)
    response = upload(home["clients"]["ada"], "crack", data, caption="runs across the part")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["label"] == "crack"
    assert body["alt"] == "Example of crack: runs across the part"
    assert (body["width"], body["height"], body["byte_size"]) == (128, 128, len(data))
    assert len(stored_files()) == 1

    listed = home["clients"]["rita"].get(reverse("label-example-list", args=["home"]))
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [body["id"]]
    image = home["clients"]["rita"].get(body["image_url"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content) == data


def test_non_members_and_other_workflows_get_nothing(home: dict[str, Any]) -> None:
    example = label_example_add(
        workflow=home["workflow"], actor=home["ada"], label="ok", image_data=image_bytes("ok")
    )
    olga = home["clients"]["olga"]
    for url in (
        reverse("label-example-list", args=["home"]),
        reverse("label-example-image", args=["home", example.pk]),
    ):
        assert olga.get(url).status_code == 404
    # The id of one workflow's example does not reach it through another workflow.
    own = olga.get(reverse("label-example-image", args=["other", example.pk]))
    assert own.status_code == 404
    assert olga.delete(reverse("label-example-detail", args=["other", example.pk])).status_code == (
        404
    )
    # A reviewer sees it and may not add or remove.
    rita = home["clients"]["rita"]
    assert upload(rita, "ok", image_bytes("ok", seed=9)).status_code == 403
    assert rita.delete(reverse("label-example-detail", args=["home", example.pk])).status_code == (
        403
    )
    assert LabelExample.objects.count() == 1


@pytest.mark.parametrize(
    ("label", "data", "status", "field", "words"),
    [
        ("nope", image_bytes("ok"), 400, "label", "not a label"),
        ("ok", b"", 400, "image", "empty"),
        ("ok", b"this is not an image at all", 400, "image", "not an image"),
        ("ok", image_bytes("ok")[:300], 400, "image", "truncated or corrupt"),
        ("ok", None, 415, "image", "not accepted"),
    ],
    ids=["unknown-label", "empty", "not-an-image", "truncated", "gif"],
)
def test_bad_uploads_are_refused_by_name_and_leave_nothing(
    home: dict[str, Any], label: str, data: bytes | None, status: int, field: str, words: str
) -> None:
    if data is None:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="GIF")
        data = buffer.getvalue()
    response = upload(home["clients"]["ada"], label, data)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"]
    assert LabelExample.objects.count() == 0
    assert stored_files() == []


def test_size_limits_and_decompression_bombs(home: dict[str, Any], settings: Any) -> None:
    settings.LOOPGATE_MAX_UPLOAD_BYTES = 1000
    big = upload(home["clients"]["ada"], "ok", image_bytes("ok"))
    assert big.status_code == 413
    assert "over the limit" in big.json()["error"]["message"]
    settings.LOOPGATE_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
    settings.LOOPGATE_MAX_IMAGE_PIXELS = 100
    bomb = upload(home["clients"]["ada"], "ok", image_bytes("ok"))
    assert bomb.status_code == 400
    assert "decompression bomb" in bomb.json()["error"]["message"]
    assert LabelExample.objects.count() == 0
    assert stored_files() == []


def test_the_same_image_twice_and_too_many(home: dict[str, Any]) -> None:
    ada = home["clients"]["ada"]
    first = image_bytes("stain", seed=0)
    assert upload(ada, "stain", first).status_code == 201
    again = upload(ada, "stain", first)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "example_exists"
    # The same picture may illustrate another label.
    assert upload(ada, "ok", first).status_code == 201
    for seed in range(1, LABEL_EXAMPLES_PER_LABEL):
        assert upload(ada, "stain", image_bytes("stain", seed=seed)).status_code == 201
    full = upload(ada, "stain", image_bytes("stain", seed=99))
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "too_many_examples"
    assert LabelExample.objects.filter(label="stain").count() == LABEL_EXAMPLES_PER_LABEL
    assert len(stored_files()) == LABEL_EXAMPLES_PER_LABEL + 1


def test_caption_is_checked(home: dict[str, Any]) -> None:
    response = upload(home["clients"]["ada"], "ok", image_bytes("ok"), caption="x" * 201)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "caption"
    assert stored_files() == []


@pytest.mark.django_db(transaction=True)
def test_removing_an_example_removes_its_file(
    make_workflow: Any, make_user: Any, member: Any, client_for: Any
) -> None:
    workflow = make_workflow("home", level="human_only", serving=False)
    ada = make_user("ada")
    member(ada, workflow, review=True, admin=True)
    client = client_for(ada)
    created = upload(client, "ok", image_bytes("ok")).json()
    assert len(stored_files()) == 1
    removed = client.delete(reverse("label-example-detail", args=["home", created["id"]]))
    assert removed.status_code == 204
    assert LabelExample.objects.count() == 0
    assert stored_files() == []
    assert client.get(created["image_url"]).status_code == 404


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_labels_page_adds_shows_and_removes_examples(home: dict[str, Any]) -> None:
    page = browser(home["ada"])
    url = reverse("workspace:settings-labels", args=["home"])
    data = image_bytes("scratch", seed=4)
    response = page.post(
        url,
        {
            "action": "example-add",
            "label": "scratch",
            "caption": "a thin line",
            "image": SimpleUploadedFile("s.png", data),
        },
    )
    assert response.status_code == 302
    example = LabelExample.objects.get()
    shown = page.get(url).content.decode()
    image_url = reverse("label-example-image", args=["home", example.pk])
    assert f'src="{image_url}"' in shown
    assert 'alt="Example of scratch: a thin line"' in shown

    refused = page.post(
        url,
        {
            "action": "example-add",
            "label": "scratch",
            "image": SimpleUploadedFile("s.png", b"GIF89a not really"),
        },
    )
    assert refused.status_code in (400, 415)
    assert "image:" in refused.content.decode()
    assert LabelExample.objects.count() == 1

    removed = page.post(url, {"action": "example-remove", "example_id": str(example.pk)})
    assert removed.status_code == 302
    assert LabelExample.objects.count() == 0
    # Another workflow's admin cannot reach the page, a reviewer is refused.
    assert browser(home["olga"]).get(url).status_code == 404
    assert browser(home["rita"]).get(url).status_code == 403


def test_the_review_screen_shows_examples_in_the_instructions(home: dict[str, Any]) -> None:
    label_example_add(
        workflow=home["workflow"],
        actor=home["ada"],
        label="crack",
        caption="across",
        image_data=image_bytes("crack"),
    )
    shown = browser(home["rita"]).get(reverse("review:screen", args=["home"])).content.decode()
    assert 'id="instructions"' in shown
    assert 'alt="Example of crack: across"' in shown
    assert 'loading="lazy"' in shown


def test_the_django_admin_goes_through_the_service(home: dict[str, Any], make_user: Any) -> None:
    root = make_user("root", superuser=True)
    admin = browser(root)
    add_url = reverse("admin:workflows_labelexample_add")
    refused = admin.post(
        add_url,
        {
            "workflow": home["workflow"].pk,
            "label": "nope",
            "caption": "",
            "image": SimpleUploadedFile("x.png", image_bytes("ok")),
        },
    )
    assert refused.status_code == 200
    assert "is not a label of workflow" in refused.content.decode()
    assert LabelExample.objects.count() == 0
    added = admin.post(
        add_url,
        {
            "workflow": home["workflow"].pk,
            "label": "ok",
            "caption": "clean",
            "image": SimpleUploadedFile("x.png", image_bytes("ok")),
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    example = LabelExample.objects.get()
    assert (example.label, example.caption, example.created_by) == ("ok", "clean", root)
    assert example.image_sha256


@pytest.mark.django_db(transaction=True)
def test_the_django_admin_removes_through_the_service(
    make_workflow: Any, make_user: Any, member: Any
) -> None:
    workflow = make_workflow("home", level="human_only", serving=False)
    root = make_user("root", superuser=True)
    example = label_example_add(
        workflow=workflow, actor=root, label="ok", image_data=image_bytes("ok")
    )
    assert len(stored_files()) == 1
    admin = browser(root)
    url = reverse("admin:workflows_labelexample_delete", args=[example.pk])
    assert admin.post(url, {"post": "yes"}).status_code == 302
    assert LabelExample.objects.count() == 0
    assert stored_files() == []
