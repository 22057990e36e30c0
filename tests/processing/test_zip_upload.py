"""The zip upload page: a zip of images through the bulk ingest service, per-file results,
and an archive refused as a whole (nothing stored) when it is too much or malformed."""

from __future__ import annotations

import io
import json
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.review.factories import tiny_png
from workflows.models import Case

pytestmark = pytest.mark.django_db

URL = "/workflows/line/cases/upload/"


@pytest.fixture
def line(make_workflow: Any, make_user: Any, member: Any) -> dict[str, Any]:
    workflow = make_workflow("line", level="shadow")
    sam, rita = make_user("sam"), make_user("rita")
    member(sam, workflow, submit=True, review=True)
    member(rita, workflow, review=True)
    return {"workflow": workflow, "sam": login(sam), "rita": login(rita)}


def login(user: Any) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def png(i: int) -> bytes:
    return tiny_png(colour=(i * 40 % 256, 90, 200 - i), size=8)


def archive(entries: list[tuple[str, bytes]], *, deflate: bool = True) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def upload(client: Client, data: bytes, name: str = "batch.zip") -> Any:
    part = io.BytesIO(data)
    part.name = name
    return client.post(URL, {"file": part})


def stored_files() -> list[Path]:
    return [p for p in (Path(django_settings.MEDIA_ROOT) / "cases").rglob("*") if p.is_file()]


ROW = re.compile(
    r'<th scope="row">([^<]+)</th>\s*<td>[^<]*</td>\s*<td><span class="outcome[^"]*">'
    r"([^<]+)</span>.*?</td>\s*<td>(.*?)</td>",
    re.S,
)


def rows(response: Any) -> dict[str, str]:
    """File name -> the result cell's words, read from the rendered table."""
    return {name: outcome for name, outcome, _ in ROW.findall(response.content.decode())}


def reasons(response: Any) -> dict[str, str]:
    """File name -> the last cell (the case, or why the file was refused)."""
    html = response.content.decode().replace("&#x27;", "'")
    return {name: last.strip() for name, _, last in ROW.findall(html)}


def test_good_images_accepted_and_a_broken_one_refused_with_its_reason(
    line: dict[str, Any],
) -> None:
    manifest = [
        {"file": "a.png", "external_id": "A-1", "metadata": {"station": 4}},
        {"file": "b.png", "external_id": "B-1"},
    ]
    data = archive(
        [
            ("batch/a.png", png(1)),
            ("batch/deeper/b.png", png(2)),
            ("c.png", png(3)),
            ("broken.png", png(4)[:40]),
            ("notes.txt", b"not an image"),
            ("manifest.json", json.dumps(manifest).encode()),
        ]
    )
    response = upload(line["sam"], data)
    assert response.status_code == 200, response.content
    results = rows(response)
    assert results == {
        "a.png": "accepted",
        "b.png": "accepted",
        "c.png": "accepted",
        "broken.png": "refused",
        "notes.txt": "refused",
    }
    html = response.content.decode()
    assert "<strong>3</strong> accepted" in html
    assert "<strong>2</strong> refused" in html
    # The refusals say why, as the single endpoint would.
    why = reasons(response)
    assert why["broken.png"].startswith("image: the file is"), why
    assert why["notes.txt"].startswith("image: the file is not an image"), why
    cases = {case.external_id: case for case in Case.objects.all()}
    assert set(cases) == {"A-1", "B-1", None}
    assert cases["A-1"].metadata == {"station": 4}
    assert Case.objects.count() == 3
    assert len(stored_files()) == 3
    # Each accepted case links to its page.
    assert f'href="/workflows/line/cases/{cases["A-1"].id}/"' in html


def test_again_the_keyed_files_are_already_submitted(line: dict[str, Any]) -> None:
    manifest = "file,external_id,colour\na.png,A-1,red\nb.png,B-1,\n"
    data = archive([("a.png", png(1)), ("b.png", png(2)), ("manifest.csv", manifest.encode())])
    first = upload(line["sam"], data)
    assert rows(first) == {"a.png": "accepted", "b.png": "accepted"}
    assert Case.objects.get(external_id="A-1").metadata == {"colour": "red"}
    assert Case.objects.get(external_id="B-1").metadata == {}
    again = upload(line["sam"], data)
    assert rows(again) == {"a.png": "already submitted", "b.png": "already submitted"}
    assert Case.objects.count() == 2


def test_unsafe_and_hidden_names_are_ignored_and_listed(line: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("good.png", png(1))
        zf.writestr("../escape.png", png(2))
        zf.writestr("/etc/abs.png", png(3))
        zf.writestr("__MACOSX/._good.png", b"resource fork")
        zf.writestr(".DS_Store", b"finder")
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    response = upload(line["sam"], buffer.getvalue())
    assert response.status_code == 200, response.content
    assert rows(response) == {"good.png": "accepted"}
    html = response.content.decode()
    assert "5 entries ignored" in html
    for name, why in [
        ("../escape.png", "leading out of the archive"),
        ("/etc/abs.png", "an absolute path"),
        ("link.png", "a link"),
        (".DS_Store", "hidden or system file"),
    ]:
        assert f"<code>{name}</code>: " in html
        assert why in html
    assert Case.objects.count() == 1


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [
        (lambda: b"PK\x03\x04 this is no archive", 400, "not a zip archive"),
        (lambda: archive([("a/x.png", png(1)), ("b/x.png", png(2))]), 400, "same name 'x.png'"),
        (lambda: archive([("notes/", b"")]), 400, "holds no file"),
        (
            lambda: archive([("a.png", png(1)), ("manifest.json", b'[{"file": "zz.png"}]')]),
            400,
            "no uploaded image is named 'zz.png'",
        ),
        (
            lambda: archive([("a.png", png(1)), ("manifest.json", b"{oops")]),
            400,
            "manifest",
        ),
        (
            lambda: archive(
                [("a.png", png(1)), ("manifest.json", b"[]"), ("m/manifest.csv", b"file\n")]
            ),
            400,
            "more than one manifest",
        ),
    ],
)
def test_a_malformed_archive_is_refused_whole(
    line: dict[str, Any], make: Any, status: int, message: str
) -> None:
    response = upload(line["sam"], make())
    assert response.status_code == status, response.content
    html = response.content.decode()
    assert "Upload refused" in html
    assert message in html.replace("&#x27;", "'")
    assert "Nothing was stored." in html
    assert not Case.objects.exists()
    assert stored_files() == []


class TestLimits:
    def test_entry_count(self, line: dict[str, Any], settings: Any) -> None:
        settings.LOOPGATE_BULK_MAX_ITEMS = 3
        response = upload(line["sam"], archive([(f"{i}.png", png(i)) for i in range(4)]))
        assert response.status_code == 400
        assert "4 files is over the limit of 3" in response.content.decode()
        assert not Case.objects.exists()

    def test_entries_of_any_kind(self, line: dict[str, Any], settings: Any) -> None:
        settings.LOOPGATE_BULK_MAX_ITEMS = 3
        entries = [("a.png", png(1))] + [(f"dir{i}/", b"") for i in range(6)]
        response = upload(line["sam"], archive(entries))
        assert response.status_code == 400
        assert "holds 7 entries; at most 6" in response.content.decode()

    def test_a_directory_of_many_entries_is_refused_before_it_is_parsed(
        self, line: dict[str, Any], settings: Any
    ) -> None:
        # 70,000 entries need the zip64 end record: its count is read, not the entries.
        settings.LOOPGATE_BULK_MAX_ITEMS = 100
        response = upload(line["sam"], archive([(str(i), b"") for i in range(70_000)]))
        assert response.status_code == 400
        assert "holds 70000 entries; at most 200" in response.content.decode()

    def test_a_directory_of_long_names_is_refused(
        self, line: dict[str, Any], settings: Any
    ) -> None:
        settings.LOOPGATE_BULK_MAX_ITEMS = 3
        names = [("x" * 3000 + f"{i}.png", png(i)) for i in range(3)]
        response = upload(line["sam"], archive(names))
        assert response.status_code == 400
        assert "the archive directory is" in response.content.decode()
        assert "at most 6144" in response.content.decode()

    def test_total_uncompressed_size_refuses_a_bomb_unread(
        self, line: dict[str, Any], settings: Any
    ) -> None:
        # 50 MB of zeros compresses to about 50 kB: the declared size is what counts.
        settings.LOOPGATE_BULK_MAX_BYTES = 20 * 1024 * 1024
        bomb = archive([("a.png", png(1)), ("zeros.png", bytes(50 * 1024 * 1024))])
        assert len(bomb) < 200_000
        response = upload(line["sam"], bomb)
        assert response.status_code == 413
        html = response.content.decode()
        assert "bytes once decompressed; at most 20971520 bytes" in html
        assert not Case.objects.exists()
        assert stored_files() == []

    def test_an_entry_over_the_image_limit_is_its_own_413(
        self, line: dict[str, Any], settings: Any
    ) -> None:
        settings.LOOPGATE_MAX_UPLOAD_BYTES = 4096
        response = upload(line["sam"], archive([("a.png", png(1)), ("big.png", bytes(10_000))]))
        assert response.status_code == 200
        assert rows(response) == {"a.png": "accepted", "big.png": "refused"}
        assert "10000 bytes is over the limit of 4096 bytes" in response.content.decode()
        assert Case.objects.count() == 1

    def test_the_archive_itself_is_refused_before_it_is_read(
        self, line: dict[str, Any], settings: Any, monkeypatch: Any
    ) -> None:
        from processing import views

        def read_the_body(*args: Any) -> Any:
            raise AssertionError("the body was read")

        monkeypatch.setattr(views, "_upload", read_the_body)
        settings.LOOPGATE_BULK_MAX_BYTES = 100_000
        data = archive([("a.png", png(1)), ("b.png", bytes(300_000))], deflate=False)
        response = upload(line["sam"], data)
        assert response.status_code == 413
        assert "over the limit of 100000 bytes" in response.content.decode()
        assert not Case.objects.exists()

    def test_a_corrupt_entry_is_its_own_error(self, line: dict[str, Any]) -> None:
        data = bytearray(archive([("a.png", png(1)), ("b.png", png(2))], deflate=False))
        # Damage b.png's bytes (its CRC no longer matches); a.png is untouched.
        start = data.index(png(2))
        data[start + 30] ^= 0xFF
        response = upload(line["sam"], bytes(data))
        assert rows(response) == {"a.png": "accepted", "b.png": "refused"}
        assert "the entry is corrupt" in response.content.decode()
        assert Case.objects.count() == 1


def test_deadlines_from_the_manifest_are_kept(line: dict[str, Any]) -> None:
    manifest = [{"file": "a.png", "external_id": "A", "deadline_seconds": 600}]
    response = upload(
        line["sam"], archive([("a.png", png(1)), ("manifest.json", json.dumps(manifest).encode())])
    )
    assert rows(response) == {"a.png": "accepted"}
    case = Case.objects.get(external_id="A")
    assert case.deadline_at is not None
    assert 590 < (case.deadline_at - case.created_at).total_seconds() <= 600


def test_who_may_upload(line: dict[str, Any]) -> None:
    # A reviewer without the submit right: no form on the cases page, 403 on the upload.
    cases_page = line["rita"].get("/workflows/line/cases/")
    assert cases_page.status_code == 200
    assert b"data-upload-form" not in cases_page.content
    assert line["rita"].get(URL).status_code == 403
    assert upload(line["rita"], archive([("a.png", png(1))])).status_code == 403
    assert not Case.objects.exists()
    # A submitter: the form is on the cases page and posts to the upload page.
    page = line["sam"].get("/workflows/line/cases/")
    assert b"data-upload-form" in page.content
    assert f'action="{URL}"'.encode() in page.content
    assert Client().get(URL).status_code == 302


def test_the_csrf_token_is_checked_once_the_size_is_known(line: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(line["workflow"].memberships.get(user__username="sam").user)
    part = io.BytesIO(archive([("a.png", png(1))]))
    part.name = "batch.zip"
    assert client.post(URL, {"file": part}).status_code == 403
    assert not Case.objects.exists()
