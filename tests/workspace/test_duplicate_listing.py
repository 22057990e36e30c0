"""Duplicates in the case list (?duplicate=, ?duplicate_of=), on the case page and in the
export (docs/decisions.md D88): B and C are copies of A's image."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

URL = "/api/v1/workflows/line/cases/"


@pytest.fixture
def world(cases_world: dict[str, Any]) -> dict[str, Any]:
    from workflows.models import Case

    cases = cases_world["cases"]
    Case.objects.filter(pk__in=[cases["b"].pk, cases["c"].pk]).update(duplicate_of=cases["a"])
    return cases_world


def listed(client: Any, **params: Any) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return [row["external_id"] or row["status"] for row in response.json()["results"]]


def assert_error(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["field"] == field, error
    assert field in error["message"], error


def session(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


class TestListFilter:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("duplicate", "maybe"),
            ("duplicate", "2"),
            ("duplicate_of", "not-a-uuid"),
            ("duplicate_of", "1234"),
            ("duplicate_of", "x" * 500),
        ],
    )
    def test_a_bad_value_is_a_400_naming_it(
        self, world: dict[str, Any], name: str, value: str
    ) -> None:
        assert_error(world["client"]["admin"].get(URL, {name: value}), 400, name)

    @pytest.mark.parametrize(
        ("name", "value"), [("duplicate", "true"), ("duplicate", "false"), ("duplicate_of", "a")]
    )
    def test_a_reviewer_may_not_look_up_copies(
        self, world: dict[str, Any], name: str, value: str
    ) -> None:
        if name == "duplicate_of":
            value = str(world["cases"]["a"].id)
        response = world["client"]["reviewer"].get(URL, {name: value})
        assert_error(response, 403, name)
        assert "duplicates" in response.json()["error"]["message"]

    def test_true_lists_the_copies_false_the_first_of_each_image(
        self, world: dict[str, Any]
    ) -> None:
        admin = world["client"]["admin"]
        assert listed(admin, duplicate="true") == ["=cmd", "ext-b"]
        assert listed(admin, duplicate="false") == ["failed", "ext-d", "ext-a"]
        assert listed(admin, duplicate="true", ordering="created_at") == ["ext-b", "=cmd"]
        assert listed(admin, duplicate="true", status="in_review") == []

    def test_duplicate_of_lists_a_groups_copies(self, world: dict[str, Any]) -> None:
        admin = world["client"]["admin"]
        cases = world["cases"]
        assert listed(admin, duplicate_of=str(cases["a"].id)) == ["=cmd", "ext-b"]
        assert listed(admin, duplicate_of=str(cases["d"].id)) == []
        # Another workflow's case has no copies here.
        assert listed(admin, duplicate_of=str(cases["other"].id)) == []

    def test_the_copies_page_through(self, world: dict[str, Any]) -> None:
        admin = world["client"]["admin"]
        first = admin.get(URL, {"duplicate": "true", "limit": 1}).json()
        assert [row["external_id"] for row in first["results"]] == ["=cmd"]
        second = admin.get(first["next"]).json()
        assert [row["external_id"] for row in second["results"]] == ["ext-b"]
        assert second["next"] is None

    def test_the_schema_documents_the_filters(self, world: dict[str, Any]) -> None:
        from workflows.inputs import FILTER_HELP

        assert {"duplicate", "duplicate_of"} <= set(FILTER_HELP)


class TestListPage:
    def test_the_form_offers_the_filter_to_admins_only(self, world: dict[str, Any]) -> None:
        page = "/workflows/line/cases/"
        admin = session(world["users"]["admin"]).get(page, {"duplicate": "true"})
        html = admin.content.decode()
        assert admin.status_code == 200
        assert 'id="f-duplicate"' in html and 'id="f-duplicate_of"' in html
        assert "ext-b" in html and "ext-d" not in html
        reviewer = session(world["users"]["reviewer"]).get(page)
        assert 'id="f-duplicate"' not in reviewer.content.decode()
        refused = session(world["users"]["reviewer"]).get(page, {"duplicate": "true"})
        assert refused.status_code == 403


class TestCasePage:
    def page(self, world: dict[str, Any], who: str, key: str) -> str:
        response = session(world["users"][who]).get(
            f"/workflows/line/cases/{world['cases'][key].id}/"
        )
        assert response.status_code == 200
        return response.content.decode()

    def test_a_copy_links_the_first_case(self, world: dict[str, Any]) -> None:
        html = self.page(world, "admin", "b")
        assert "Duplicate of" in html
        assert f'href="/workflows/line/cases/{world["cases"]["a"].id}/">ext-a</a>' in html

    def test_the_first_case_links_its_copies(self, world: dict[str, Any]) -> None:
        cases = world["cases"]
        html = self.page(world, "admin", "a")
        assert "2 later copies" in html
        for key in ("b", "c"):
            assert f'href="/workflows/line/cases/{cases[key].id}/"' in html
        assert f"?duplicate_of={cases['a'].id}" in html

    def test_the_copies_shown_are_bounded(self, world: dict[str, Any], monkeypatch: Any) -> None:
        from workspace import case_views

        monkeypatch.setattr(case_views, "COPIES_SHOWN", 1)
        cases = world["cases"]
        html = self.page(world, "admin", "a")
        assert "2 later copies" in html
        assert f'href="/workflows/line/cases/{cases["b"].id}/"' in html  # the oldest copy
        assert f'href="/workflows/line/cases/{cases["c"].id}/"' not in html

    def test_a_unique_case_says_nothing(self, world: dict[str, Any]) -> None:
        html = self.page(world, "admin", "d")
        assert "Duplicate of" not in html and "later cop" not in html

    def test_a_blind_reviewer_is_not_told(self, world: dict[str, Any]) -> None:
        # C is in shadow mode: its reviewer must not find the earlier verdict of the image.
        html = self.page(world, "reviewer", "c")
        assert "Duplicate of" not in html
        assert str(world["cases"]["a"].id) not in html


class TestExport:
    def body(self, client: Any, fmt: str) -> str:
        response = client.get("/api/v1/workflows/line/export/", {"format": fmt})
        assert response.status_code == 200
        return b"".join(response.streaming_content).decode()

    def test_jsonl_and_csv_carry_duplicate_of(self, world: dict[str, Any]) -> None:
        cases = world["cases"]
        admin = world["client"]["admin"]
        records = {
            r["external_id"]: r["duplicate_of"]
            for r in map(json.loads, self.body(admin, "jsonl").splitlines())
        }
        first = str(cases["a"].id)
        assert records == {"=cmd": first, "ext-b": first, "ext-a": None}
        rows = {
            r["external_id"]: r["duplicate_of"]
            for r in csv.DictReader(io.StringIO(self.body(admin, "csv")))
        }
        assert rows == {"'=cmd": first, "ext-b": first, "ext-a": ""}

    def test_the_export_filters_copies_out(self, world: dict[str, Any]) -> None:
        response = world["client"]["admin"].get(
            "/api/v1/workflows/line/export/", {"format": "jsonl", "duplicate": "false"}
        )
        lines = b"".join(response.streaming_content).decode().splitlines()
        assert [json.loads(line)["external_id"] for line in lines] == ["ext-a"]
