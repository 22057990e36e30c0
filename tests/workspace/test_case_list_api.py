"""GET /api/v1/workflows/{slug}/cases/: who may list, every filter, every bad value,
and cursor pages that stay stable while cases arrive."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from tests.workspace.conftest import T0, make_case

pytestmark = pytest.mark.django_db

URL = "/api/v1/workflows/line/cases/"


def listed(client: Any, **params: Any) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return [row["external_id"] or row["status"] for row in response.json()["results"]]


def assert_error(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["field"] == field, error
    assert field in error["message"], error


class TestWhoMayList:
    def test_anonymous_is_refused(self, cases_world: dict[str, Any]) -> None:
        from rest_framework.test import APIClient

        assert APIClient().get(URL).status_code in (401, 403)

    def test_a_non_member_gets_404(self, cases_world: dict[str, Any]) -> None:
        response = cases_world["client"]["outsider"].get(URL)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_another_workflows_admin_gets_404(self, cases_world: dict[str, Any]) -> None:
        response = cases_world["client"]["other_admin"].get(URL)
        assert response.status_code == 404
        assert "line" in response.json()["error"]["message"]

    def test_a_submit_only_member_gets_403(self, cases_world: dict[str, Any]) -> None:
        assert cases_world["client"]["submitter"].get(URL).status_code == 403

    def test_admins_and_reviewers_list_the_workflows_cases_only(
        self, cases_world: dict[str, Any]
    ) -> None:
        newest_first = ["failed", "ext-d", "=cmd", "ext-b", "ext-a"]
        assert listed(cases_world["client"]["admin"]) == newest_first
        assert listed(cases_world["client"]["reviewer"]) == newest_first


class TestFilters:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"status": "decided"}, ["=cmd", "ext-b", "ext-a"]),
            ({"status": "in_review"}, ["ext-d"]),
            ({"status": "failed"}, ["failed"]),
            # The label is the human label where there is one: B was audited as crack.
            ({"label": "crack"}, ["=cmd", "ext-b"]),
            ({"label": "ok"}, ["ext-a"]),
            ({"label": "scratch"}, []),
            ({"source": "model"}, ["ext-b", "ext-a"]),
            ({"source": "human"}, ["=cmd"]),
            ({"routed_level": "shadow"}, ["=cmd"]),
            ({"routed_level": "full"}, ["ext-b"]),
            ({"review_reason": "human_only"}, ["ext-d"]),
            ({"review_reason": "audit"}, ["ext-b"]),
            ({"external_id": "ext-d"}, ["ext-d"]),
            ({"external_id": "ext"}, []),
            ({"created_after": "2026-11-02"}, ["failed", "ext-d", "=cmd", "ext-b"]),
            ({"created_before": "2026-11-03"}, ["ext-b", "ext-a"]),
            (
                {"created_after": "2026-11-02T08:00:00Z", "created_before": "2026-11-03T08:00Z"},
                ["ext-b"],
            ),
            ({"created_after": "2026-11-02T09:00:00+01:00"}, ["failed", "ext-d", "=cmd", "ext-b"]),
            ({"disagree": "true"}, ["=cmd", "ext-b"]),
            ({"disagree": "false"}, ["failed", "ext-d", "ext-a"]),
            ({"audit": "true"}, ["ext-b"]),
            ({"audit": "false"}, ["failed", "ext-d", "=cmd", "ext-a"]),
            ({"status": "decided", "source": "model", "audit": "false"}, ["ext-a"]),
            ({"label": "crack", "source": "human"}, ["=cmd"]),
            ({"ordering": "created_at"}, ["ext-a", "ext-b", "=cmd", "ext-d", "failed"]),
            (
                {"ordering": "-created_at", "status": ""},
                ["failed", "ext-d", "=cmd", "ext-b", "ext-a"],
            ),
            ({"ordering": "decided_at"}, ["ext-a", "ext-b", "=cmd"]),
            ({"ordering": "-decided_at"}, ["=cmd", "ext-b", "ext-a"]),
        ],
    )
    def test_filter(
        self, cases_world: dict[str, Any], params: dict[str, str], expected: list[str]
    ) -> None:
        assert listed(cases_world["client"]["admin"], **params) == expected

    def test_model_version_by_id_or_tag(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        v1, v2 = cases_world["versions"]["v1"], cases_world["versions"]["v2"]
        assert listed(client, model_version=str(v1.pk)) == ["ext-a"]
        assert listed(client, model_version=v2.tag) == ["ext-b"]

    def test_rows_carry_label_decision_and_routing(self, cases_world: dict[str, Any]) -> None:
        rows = cases_world["client"]["admin"].get(URL, {"external_id": "ext-b"}).json()["results"]
        (row,) = rows
        assert row["label"] == "crack"
        assert row["label_source"] == "human"
        assert row["decision"]["label"] == "scratch"
        assert row["decision"]["source"] == "model"
        assert row["decision"]["model_version"] == cases_world["versions"]["v2"].tag
        assert row["routing"]["audit"] is True
        assert "predictions" not in row

    def test_a_reviewer_sees_a_blind_case_without_the_model(
        self, cases_world: dict[str, Any]
    ) -> None:
        rows = cases_world["client"]["reviewer"].get(URL, {"external_id": "ext-b"}).json()
        (row,) = rows["results"]
        # A blind audit: the reviewer sees what people decided, not what the model did.
        assert row["decision"] is None
        assert row["routing"] is None
        assert row["review_reason"] is None
        assert row["label"] == "crack"
        assert row["label_source"] == "human"

    @pytest.mark.parametrize(
        "name, value",
        [
            ("label", "ok"),
            ("source", "model"),
            ("model_version", "1"),
            ("routed_level", "full"),
            ("review_reason", "audit"),
            ("disagree", "true"),
            ("audit", "false"),
            ("ordering", "-decided_at"),
        ],
    )
    def test_a_reviewer_may_not_filter_by_what_the_model_did(
        self, cases_world: dict[str, Any], name: str, value: str
    ) -> None:
        if name == "model_version":
            value = str(cases_world["versions"]["v1"].pk)
        assert_error(cases_world["client"]["reviewer"].get(URL, {name: value}), 403, name)


class TestBadValues:
    @pytest.mark.parametrize(
        "name, value",
        [
            ("status", "done"),
            ("status", "DECIDED"),
            ("label", "dent"),
            ("source", "robot"),
            ("model_version", "999999"),
            ("model_version", "nope:v1"),
            ("model_version", "99999999999999999999999"),
            ("model_version", "x" * 400),
            ("routed_level", "turbo"),
            ("review_reason", "boredom"),
            ("external_id", "x" * 256),
            ("created_after", "yesterday"),
            ("created_after", "2026-13-01"),
            ("created_before", "2026-11-01T25:00"),
            ("created_before", "0001-01-01"),
            ("disagree", "maybe"),
            ("audit", "2"),
            ("ordering", "status"),
            ("ordering", "-id"),
            ("limit", "0"),
            ("limit", "201"),
            ("limit", "ten"),
            ("cursor", "garbage"),
            ("stauts", "decided"),
        ],
    )
    def test_is_a_400_naming_the_parameter(
        self, cases_world: dict[str, Any], name: str, value: str
    ) -> None:
        assert_error(cases_world["client"]["admin"].get(URL, {name: value}), 400, name)

    def test_an_empty_date_range_is_refused(self, cases_world: dict[str, Any]) -> None:
        response = cases_world["client"]["admin"].get(
            URL, {"created_after": "2026-11-03", "created_before": "2026-11-02"}
        )
        assert_error(response, 400, "created_before")


def cursor_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["cursor"][0]


class TestCursorPages:
    def test_pages_walk_every_case_once_both_ways(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        seen, pages = [], []
        response = client.get(URL, {"limit": 2}).json()
        assert response["previous"] is None
        while True:
            pages.append(response)
            seen += [row["id"] for row in response["results"]]
            if response["next"] is None:
                break
            response = client.get(response["next"]).json()
        assert len(seen) == len(set(seen)) == 5
        assert [len(page["results"]) for page in pages] == [2, 2, 1]
        back = client.get(pages[-1]["previous"]).json()
        assert [row["id"] for row in back["results"]] == seen[2:4]
        first = client.get(back["previous"]).json()
        assert [row["id"] for row in first["results"]] == seen[:2]
        assert first["previous"] is None

    def test_new_cases_do_not_shift_the_next_page(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        first = client.get(URL, {"limit": 2, "ordering": "-created_at"}).json()
        after = [row["id"] for row in client.get(first["next"]).json()["results"]]
        for hours in (200, 201, 202):
            make_case(
                cases_world["line"],
                created=T0 + dt.timedelta(hours=hours),
                image=(cases_world["cases"]["a"].image.name, cases_world["image"]),
                status="received",
            )
        assert [row["id"] for row in client.get(first["next"]).json()["results"]] == after

    def test_ties_on_the_time_are_broken_by_id(self, cases_world: dict[str, Any]) -> None:
        from workflows.models import Case

        Case.objects.filter(workflow=cases_world["line"]).update(created_at=T0)
        client = cases_world["client"]["admin"]
        seen = []
        response = client.get(URL, {"limit": 2, "ordering": "created_at"}).json()
        while True:
            seen += [row["id"] for row in response["results"]]
            if not response["next"]:
                break
            response = client.get(response["next"]).json()
        assert seen == sorted(seen)
        assert len(set(seen)) == 5

    def test_filters_are_kept_in_the_links(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        first = client.get(URL, {"limit": 1, "status": "decided"}).json()
        assert "status=decided" in first["next"]
        assert first["results"][0]["external_id"] == "=cmd"
        assert client.get(first["next"]).json()["results"][0]["external_id"] == "ext-b"

    def test_a_tampered_cursor_is_a_400(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        cursor = cursor_of(client.get(URL, {"limit": 1}).json()["next"])
        value, _, signature = cursor.rpartition(":")
        forged = value[:-2] + ("AA" if value[-2:] != "AA" else "BB") + ":" + signature
        assert_error(client.get(URL, {"cursor": forged, "limit": 1}), 400, "cursor")

    def test_a_cursor_of_another_ordering_is_a_400(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        cursor = cursor_of(client.get(URL, {"limit": 1}).json()["next"])
        response = client.get(URL, {"cursor": cursor, "ordering": "created_at"})
        assert_error(response, 400, "cursor")
        assert "ordering" in response.json()["error"]["message"]

    def test_the_links_are_urls_of_this_endpoint(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        link = client.get(URL + "?" + urlencode({"limit": 1})).json()["next"]
        assert urlparse(link).path == URL


class TestQueries:
    def test_a_page_costs_the_same_statements_whatever_its_size(
        self, cases_world: dict[str, Any]
    ) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = cases_world["client"]["admin"]
        client.get(URL, {"limit": 1})  # warm caches (content types, the token's user)
        counts = []
        for limit in (1, 5):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(URL, {"limit": limit}).status_code == 200
            counts.append(len(queries.captured_queries))
        assert counts[0] == counts[1]
