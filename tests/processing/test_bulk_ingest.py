"""Bulk ingest: many images in one request, each item as the single endpoint would store it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.review.factories import tiny_png
from workflows.models import Case, CaseEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/workflows/line/cases/bulk/"


@pytest.fixture
def line(make_workflow: Any, make_user: Any, member: Any, client_for: Any) -> dict[str, Any]:
    workflow = make_workflow("line", level="shadow")
    camera, reviewer = make_user("camera"), make_user("rita")
    member(camera, workflow, submit=True)
    member(reviewer, workflow, review=True)
    return {"workflow": workflow, "camera": client_for(camera), "reviewer": client_for(reviewer)}


def png(i: int) -> bytes:
    return tiny_png(colour=(i % 256, (i // 256) % 256, 77), size=8)


def part(name: str, data: bytes) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def post(client: Any, files: list[tuple[str, bytes]], manifest: Any = None) -> Any:
    body: dict[str, Any] = {"images": [part(name, data) for name, data in files]}
    if manifest is not None:
        body["manifest"] = manifest if isinstance(manifest, str) else json.dumps(manifest)
    return client.post(URL, body, format="multipart")


def stored_files() -> list[Path]:
    return [p for p in (Path(django_settings.MEDIA_ROOT) / "cases").rglob("*") if p.is_file()]


# --- Refusals of the whole request: nothing stored --------------------------------------


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("{not json", "manifest"),
        ({"file": "a.png"}, "expected a JSON list"),
        ([{"file": "a.png"}, {"file": "a.png"}], "named twice"),
        ([{"file": "a.png"}, {"file": "zzz.png"}], "no uploaded image is named 'zzz.png'"),
        ([{"file": "a.png"}], "not in the manifest: ['b.png']"),
        ([{"file": "a.png", "colour": 1}, {"file": "b.png"}], "unknown fields ['colour']"),
        (["a.png", "b.png"], "expected an object"),
        ([{"file": 3}, {"file": "b.png"}], "file"),
    ],
)
def test_bad_manifest_refuses_the_request(
    line: dict[str, Any], manifest: Any, message: str
) -> None:
    response = post(line["camera"], [("a.png", png(1)), ("b.png", png(2))], manifest)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["message"]
    assert response.json()["error"]["field"] == "manifest"
    assert not Case.objects.exists()
    assert stored_files() == []


def test_two_uploads_with_one_name_are_refused(line: dict[str, Any]) -> None:
    response = post(line["camera"], [("a.png", png(1)), ("a.png", png(2))])
    assert response.status_code == 400
    assert "named 'a.png'" in response.json()["error"]["message"]
    assert not Case.objects.exists()


def test_no_images(line: dict[str, Any]) -> None:
    response = line["camera"].post(URL, {"manifest": "[]"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "images"


def test_count_and_total_size_limits(line: dict[str, Any], settings: Any) -> None:
    settings.LOOPGATE_BULK_MAX_ITEMS = 2
    response = post(line["camera"], [(f"{i}.png", png(i)) for i in range(3)])
    assert response.status_code == 400
    assert "over the limit of 2" in response.json()["error"]["message"]
    settings.LOOPGATE_BULK_MAX_ITEMS = 100
    settings.LOOPGATE_BULK_MAX_BYTES = len(png(1)) + 10
    response = post(line["camera"], [("a.png", png(1)), ("b.png", png(2))])
    assert response.status_code == 413
    assert not Case.objects.exists()


def test_who_may_submit_in_bulk(line: dict[str, Any], make_user: Any, client_for: Any) -> None:
    assert post(line["reviewer"], [("a.png", png(1))]).status_code == 403
    assert post(client_for(make_user("stranger")), [("a.png", png(1))]).status_code == 404
    assert not Case.objects.exists()


# --- Per item -------------------------------------------------------------------------


def test_five_hundred_images_one_broken(line: dict[str, Any]) -> None:
    files = [(f"img-{i:03}.png", png(i)) for i in range(500)]
    files[137] = ("img-137.png", b"\x89PNG\r\n\x1a\n this is not an image")
    manifest = [
        {"file": name, "external_id": f"part-{i}", "metadata": {"line": 4, "i": i}}
        for i, (name, _) in enumerate(files)
    ]
    response = post(line["camera"], files, manifest)
    assert response.status_code == 207, response.content
    body = response.json()
    assert (body["created"], body["existing"], body["failed"]) == (499, 0, 1)
    results = body["results"]
    assert [r["file"] for r in results] == [name for name, _ in files]
    broken = results[137]
    assert broken["status"] == 400
    assert broken["id"] is None
    assert broken["external_id"] == "part-137"
    assert broken["error"]["field"] == "image"
    assert broken["error"]["message"]
    assert all(r["status"] == 201 and r["id"] for i, r in enumerate(results) if i != 137)
    assert Case.objects.count() == 499
    assert not Case.objects.filter(external_id="part-137").exists()
    assert CaseEvent.objects.filter(kind="received").count() == 499
    assert len(stored_files()) == 499  # the broken item left no file behind
    case = Case.objects.get(external_id="part-5")
    assert case.metadata == {"line": 4, "i": 5}
    assert str(case.id) == results[5]["id"]


def test_per_item_refusals_are_what_the_single_endpoint_says(
    line: dict[str, Any], settings: Any
) -> None:
    settings.LOOPGATE_MAX_UPLOAD_BYTES = 2000
    files = [
        ("ok.png", png(1)),
        ("meta.png", png(2)),
        ("key.png", png(3)),
        ("blank.png", png(4)),
        ("huge.bin", b"x" * 2500),
    ]
    manifest = [
        {"file": "ok.png", "external_id": "a"},
        {"file": "meta.png", "metadata": [1, 2]},
        {"file": "key.png", "external_id": 42},
        {"file": "blank.png", "external_id": "   "},
        {"file": "huge.bin"},
    ]
    response = post(line["camera"], files, manifest)
    assert response.status_code == 207
    got = [(r["status"], (r["error"] or {}).get("field")) for r in response.json()["results"]]
    assert got == [
        (201, None),
        (400, "metadata"),
        (400, "external_id"),
        (400, "external_id"),
        (413, "image"),
    ]
    single = line["camera"].post(
        "/api/v1/workflows/line/cases/",
        {"image": part("x.png", png(9)), "external_id": "   "},
        format="multipart",
    )
    assert single.status_code == 400
    assert single.json()["error"] == response.json()["results"][3]["error"]


def test_idempotent_per_item(line: dict[str, Any]) -> None:
    files = [("a.png", png(1)), ("b.png", png(2)), ("c.png", png(3))]
    manifest = [
        {"file": "a.png", "external_id": "k1"},
        {"file": "b.png", "external_id": "k2"},
        {"file": "c.png", "external_id": "k1"},  # the same key again in one request
    ]
    first = post(line["camera"], files, manifest).json()["results"]
    assert [r["status"] for r in first] == [201, 201, 200]
    assert first[2]["id"] == first[0]["id"]
    again = post(line["camera"], files, manifest).json()["results"]
    assert [r["status"] for r in again] == [200, 200, 200]
    assert [r["id"] for r in again] == [first[0]["id"], first[1]["id"], first[0]["id"]]
    assert Case.objects.count() == 2


def test_without_manifest_each_upload_is_an_item(line: dict[str, Any]) -> None:
    response = post(line["camera"], [("a.png", png(1)), ("b.png", png(2))])
    assert response.status_code == 207
    assert [r["status"] for r in response.json()["results"]] == [201, 201]
    assert [r["external_id"] for r in response.json()["results"]] == [None, None]


def test_import_command_for_a_folder(line: dict[str, Any], tmp_path: Path) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(png(i))
    (folder / "sub" / "deep.png").write_bytes(png(9))
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 5 images were refused"):
        call_command(
            "cases_import", "line", str(folder), "--by", "camera", "--recursive", stdout=out
        )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[-1] == {"items": 5, "created": 4, "existing": 0, "failed": 1}
    assert Case.objects.filter(external_id="sub/deep.png").exists()
    # Again: idempotent by the relative path.
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "cases_import", "line", str(folder), "--by", "camera", "--recursive", stdout=out
        )
    assert json.loads(out.getvalue().splitlines()[-1])["existing"] == 4
    assert Case.objects.count() == 4
    with pytest.raises(CommandError, match="you may not"):
        call_command("cases_import", "line", str(folder), "--by", "rita", stdout=out)
