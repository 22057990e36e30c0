"""The case API as upstream systems use it: submit, read, and every bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from PIL import Image
from rest_framework.test import APIClient

from tests.conftest import image_bytes
from workflows.models import Case, CaseEvent

pytestmark = pytest.mark.django_db


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "cases"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def upload(data: bytes, name: str = "part.png") -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


@pytest.fixture
def submitter_setup(
    make_user: Any, make_workflow: Any, member: Any, client_for: Any
) -> dict[str, Any]:
    workflow = make_workflow("line", level="human_only", serving=False)
    user = make_user("camera")
    member(user, workflow, submit=True)
    return {"workflow": workflow, "user": user, "client": client_for(user)}


def post_case(client: APIClient, slug: str, **fields: Any) -> Any:
    return client.post(f"/api/v1/workflows/{slug}/cases/", fields, format="multipart")


def assert_error(response: Any, status: int, field: str | None, *words: str) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    if field is not None:
        assert error["field"] == field
    for word in words:
        assert word in error["message"].lower(), error["message"]


def assert_nothing_stored(before: int = 0) -> None:
    assert Case.objects.count() == before
    assert len(stored_files()) == before


class TestSubmit:
    def test_created_case_goes_to_review_in_human_only(self, submitter_setup: dict) -> None:
        client, workflow = submitter_setup["client"], submitter_setup["workflow"]
        response = post_case(
            client,
            workflow.slug,
            image=upload(image_bytes("scratch")),
            external_id="part-1",
            metadata=json.dumps({"station": "A", "shift": 2}),
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] == "in_review"
        assert body["external_id"] == "part-1"
        assert body["metadata"] == {"station": "A", "shift": 2}
        assert body["image"]["format"] == "PNG"
        assert body["decision"] is None
        assert body["predictions"] == []
        assert body["routing"]["level"] == "human_only"
        assert body["review_reason"] == "human_only"

        case = Case.objects.get(id=body["id"])
        kinds = list(case.events.values_list("kind", "to_status"))
        assert kinds == [("received", "received"), ("status", "in_review")]
        assert case.tasks.get().reason == "human_only"

    def test_same_external_id_returns_the_existing_case(self, submitter_setup: dict) -> None:
        client, slug = submitter_setup["client"], submitter_setup["workflow"].slug
        first = post_case(client, slug, image=upload(image_bytes(seed=1)), external_id="dup")
        second = post_case(client, slug, image=upload(image_bytes(seed=2)), external_id="dup")
        assert first.status_code == 201
        assert second.status_code == 200
        assert second.json()["id"] == first.json()["id"]
        assert Case.objects.count() == 1
        assert len(stored_files()) == 1

    def test_external_id_is_scoped_to_the_workflow(
        self, submitter_setup: dict, make_workflow: Any, member: Any
    ) -> None:
        other = make_workflow("other", level="human_only", serving=False)
        member(submitter_setup["user"], other, submit=True)
        client = submitter_setup["client"]
        a = post_case(client, "line", image=upload(image_bytes()), external_id="x")
        b = post_case(client, "other", image=upload(image_bytes()), external_id="x")
        assert a.status_code == b.status_code == 201
        assert a.json()["id"] != b.json()["id"]

    def test_jpeg_and_webp_are_accepted(self, submitter_setup: dict) -> None:
        client, slug = submitter_setup["client"], submitter_setup["workflow"].slug
        for fmt in ("JPEG", "WEBP"):
            response = post_case(
                client, slug, image=upload(image_bytes(fmt=fmt), f"p.{fmt.lower()}")
            )
            assert response.status_code == 201, response.content
            assert response.json()["image"]["format"] == fmt


class TestBadInput:
    def test_missing_image(self, submitter_setup: dict) -> None:
        response = post_case(submitter_setup["client"], "line", external_id="a")
        assert_error(response, 400, "image", "required")
        assert_nothing_stored()

    def test_not_an_image(self, submitter_setup: dict) -> None:
        response = post_case(
            submitter_setup["client"], "line", image=upload(b"hello, world" * 50, "x.png")
        )
        assert_error(response, 400, "image", "not an image")
        assert_nothing_stored()

    def test_empty_file(self, submitter_setup: dict) -> None:
        response = post_case(submitter_setup["client"], "line", image=upload(b"", "x.png"))
        assert response.status_code == 400
        assert_nothing_stored()

    def test_truncated_image(self, submitter_setup: dict) -> None:
        data = image_bytes(fmt="PNG")
        response = post_case(
            submitter_setup["client"], "line", image=upload(data[: len(data) // 2])
        )
        assert_error(response, 400, "image", "truncated or corrupt")
        assert_nothing_stored()

    def test_corrupt_jpeg_body(self, submitter_setup: dict) -> None:
        data = bytearray(image_bytes(fmt="JPEG"))
        data[len(data) // 2 : len(data) // 2 + 400] = b"\x00" * 400
        data = bytes(data[: len(data) - 200])
        response = post_case(submitter_setup["client"], "line", image=upload(data, "x.jpg"))
        assert_error(response, 400, "image")
        assert_nothing_stored()

    def test_decompression_bomb(self, submitter_setup: dict, settings: Any) -> None:
        settings.LOOPGATE_MAX_IMAGE_PIXELS = 10_000
        bomb = io.BytesIO()
        Image.new("L", (4000, 4000)).save(bomb, format="PNG")
        assert len(bomb.getvalue()) < 100_000  # tiny file, 16 million pixels
        response = post_case(submitter_setup["client"], "line", image=upload(bomb.getvalue()))
        assert_error(response, 400, "image", "decompression bomb")
        assert_nothing_stored()

    def test_pillow_bomb_limit_is_also_refused(
        self, submitter_setup: dict, monkeypatch: Any
    ) -> None:
        data = image_bytes()
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        response = post_case(submitter_setup["client"], "line", image=upload(data))
        assert_error(response, 400, "image", "decompression bomb")
        assert_nothing_stored()

    def test_format_not_allowed(self, submitter_setup: dict) -> None:
        gif = io.BytesIO()
        Image.new("RGB", (32, 32), "red").save(gif, format="GIF")
        response = post_case(
            submitter_setup["client"], "line", image=upload(gif.getvalue(), "x.gif")
        )
        assert_error(response, 415, "image", "not accepted", "png")
        assert_nothing_stored()

    def test_oversized_upload(self, submitter_setup: dict, settings: Any) -> None:
        settings.LOOPGATE_MAX_UPLOAD_BYTES = 1000
        response = post_case(submitter_setup["client"], "line", image=upload(image_bytes()))
        assert_error(response, 413, "image", "over the limit")
        assert_nothing_stored()

    @pytest.mark.parametrize(
        ("metadata", "words"),
        [
            ("{not json", ["not valid json"]),
            ("[1, 2, 3]", ["json object"]),
            ('"a string"', ["json object"]),
            ("null", ["json object"]),
        ],
    )
    def test_malformed_metadata(
        self, submitter_setup: dict, metadata: str, words: list[str]
    ) -> None:
        response = post_case(
            submitter_setup["client"], "line", image=upload(image_bytes()), metadata=metadata
        )
        assert_error(response, 400, "metadata", *words)
        assert_nothing_stored()

    def test_metadata_too_large(self, submitter_setup: dict) -> None:
        metadata = json.dumps({"blob": "x" * 20_000})
        response = post_case(
            submitter_setup["client"], "line", image=upload(image_bytes()), metadata=metadata
        )
        assert_error(response, 400, "metadata", "limit")
        assert_nothing_stored()

    def test_external_id_too_long(self, submitter_setup: dict) -> None:
        response = post_case(
            submitter_setup["client"], "line", image=upload(image_bytes()), external_id="x" * 300
        )
        assert_error(response, 400, "external_id")
        assert_nothing_stored()

    def test_unknown_workflow(self, submitter_setup: dict) -> None:
        response = post_case(submitter_setup["client"], "nope", image=upload(image_bytes()))
        assert_error(response, 404, None, "not found")
        assert_nothing_stored()

    def test_missing_token(self, submitter_setup: dict) -> None:
        response = post_case(APIClient(), "line", image=upload(image_bytes()))
        assert response.status_code == 401
        assert_nothing_stored()

    def test_wrong_token(self, submitter_setup: dict) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
        response = post_case(client, "line", image=upload(image_bytes()))
        assert response.status_code == 401
        assert "invalid token" in response.json()["error"]["message"].lower()
        assert_nothing_stored()

    def test_token_of_a_member_without_submit_right(
        self, submitter_setup: dict, make_user: Any, member: Any, client_for: Any
    ) -> None:
        reviewer = make_user("rita")
        member(reviewer, submitter_setup["workflow"], review=True)
        response = post_case(client_for(reviewer), "line", image=upload(image_bytes()))
        assert_error(response, 403, None, "may not")
        assert_nothing_stored()

    def test_token_of_another_workflows_system_gets_404(
        self,
        submitter_setup: dict,
        make_user: Any,
        make_workflow: Any,
        member: Any,
        client_for: Any,
    ) -> None:
        stranger = make_user("other-camera")
        member(stranger, make_workflow("elsewhere", level="human_only", serving=False), submit=True)
        response = post_case(client_for(stranger), "line", image=upload(image_bytes()))
        assert_error(response, 404, None, "not found")
        assert_nothing_stored()


class TestRead:
    def test_case_detail_and_events(self, submitter_setup: dict) -> None:
        client = submitter_setup["client"]
        created = post_case(client, "line", image=upload(image_bytes())).json()
        detail = client.get(f"/api/v1/cases/{created['id']}/")
        assert detail.status_code == 200
        assert detail.json()["status"] == "in_review"
        events = client.get(f"/api/v1/cases/{created['id']}/events/").json()
        assert [e["to_status"] for e in events] == ["received", "in_review"]
        assert events[0]["actor"] == "camera"

    def test_case_image_is_served_to_members_only(
        self, submitter_setup: dict, make_user: Any, client_for: Any
    ) -> None:
        client = submitter_setup["client"]
        data = image_bytes()
        created = post_case(client, "line", image=upload(data)).json()
        response = client.get(f"/api/v1/cases/{created['id']}/image/")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert b"".join(response.streaming_content) == data
        outsider = client_for(make_user("outsider"))
        assert outsider.get(f"/api/v1/cases/{created['id']}/image/").status_code == 404

    @pytest.mark.parametrize("case_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
    def test_unknown_case(self, submitter_setup: dict, case_id: str) -> None:
        assert submitter_setup["client"].get(f"/api/v1/cases/{case_id}/").status_code == 404

    def test_another_workflows_member_cannot_read_the_case(
        self,
        submitter_setup: dict,
        make_user: Any,
        make_workflow: Any,
        member: Any,
        client_for: Any,
    ) -> None:
        created = post_case(submitter_setup["client"], "line", image=upload(image_bytes())).json()
        stranger = make_user("stranger")
        member(stranger, make_workflow("elsewhere", level="human_only", serving=False), submit=True)
        assert client_for(stranger).get(f"/api/v1/cases/{created['id']}/").status_code == 404

    def test_workflow_list_and_detail_show_only_memberships(
        self, submitter_setup: dict, make_workflow: Any
    ) -> None:
        make_workflow("hidden", level="human_only", serving=False)
        client = submitter_setup["client"]
        slugs = [w["slug"] for w in client.get("/api/v1/workflows/").json()]
        assert slugs == ["line"]
        detail = client.get("/api/v1/workflows/line/").json()
        assert detail["labels"] == ["ok", "scratch", "crack", "stain"]
        assert detail["automation"]["level"] == "human_only"
        assert detail["serving_model_version"] is None
        assert client.get("/api/v1/workflows/hidden/").status_code == 404

    def test_stats(self, submitter_setup: dict) -> None:
        client = submitter_setup["client"]
        for seed in range(3):
            post_case(client, "line", image=upload(image_bytes(seed=seed)))
        stats = client.get("/api/v1/workflows/line/stats/").json()
        assert stats["counts"]["in_review"] == 3
        assert stats["queue"]["depth"] == 3
        assert stats["queue"]["oldest_age_seconds"] >= 0
        assert stats["automation_rate"] is None

    def test_events_record_who_submitted(self, submitter_setup: dict) -> None:
        post_case(submitter_setup["client"], "line", image=upload(image_bytes()))
        event = CaseEvent.objects.get(kind="received")
        assert event.actor == submitter_setup["user"]
        assert event.actor_type == "user"
