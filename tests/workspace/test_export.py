"""GET /api/v1/workflows/{slug}/export/: the files read back (JSON Lines, CSV, zip), who
may export, bad input, and that the export is streamed (rows made as they are sent)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/workflows/line/export/"


def body(response: Any) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response.streaming
    return b"".join(response.streaming_content)


def jsonl(client: Any, **params: Any) -> list[dict[str, Any]]:
    data = body(client.get(URL, {"format": "jsonl", **params}))
    return [json.loads(line) for line in data.decode().splitlines()]


class TestJsonLines:
    def test_holds_the_labelled_cases_with_their_story(self, cases_world: dict[str, Any]) -> None:
        records = jsonl(cases_world["client"]["admin"])
        cases = cases_world["cases"]
        # Newest first; D (in review) and E (failed) have no label and are left out.
        assert [r["case_id"] for r in records] == [str(cases[k].id) for k in ("c", "b", "a")]
        c, b, a = records
        assert a["label"] == "ok"
        assert a["label_source"] == "model"
        assert a["decision_source"] == "model"
        assert a["model_version"] == cases_world["versions"]["v1"].tag
        assert a["confidence"] == 0.97
        assert a["metadata"] == {"line": 1}
        assert a["verdicts"] == []
        assert a["external_id"] == "ext-a"
        assert a["image_url"] == f"http://testserver/api/v1/cases/{cases['a'].id}/image/"
        # B: the model decided scratch; the audit says crack, and that is its label.
        assert (b["label"], b["label_source"], b["decision_label"]) == ("crack", "human", "scratch")
        assert [v["label"] for v in b["verdicts"]] == ["crack"]
        assert c["label"] == "crack"
        assert c["decision_source"] == "human"
        assert c["model_version"] is None
        assert [(v["reviewer"], v["label"], v["comment"]) for v in c["verdicts"]] == [
            ("rita", "crack", "clear crack on the left"),
            ("ada", "crack", ""),
        ]
        assert all(v["created_at"] for v in c["verdicts"])

    def test_the_image_url_serves_the_image(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        (record,) = jsonl(client, external_id="ext-a")
        response = client.get(record["image_url"])
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == cases_world["image"]

    @pytest.mark.parametrize(
        "params, expected",
        [
            ({"label": "crack"}, ["=cmd", "ext-b"]),
            ({"source": "human"}, ["=cmd"]),
            ({"disagree": "true"}, ["=cmd", "ext-b"]),
            ({"audit": "true"}, ["ext-b"]),
            ({"created_before": "2026-11-02"}, ["ext-a"]),
            ({"ordering": "created_at"}, ["ext-a", "ext-b", "=cmd"]),
            ({"status": "in_review"}, []),
        ],
    )
    def test_filters_as_on_the_case_list(
        self, cases_world: dict[str, Any], params: dict[str, str], expected: list[str]
    ) -> None:
        records = jsonl(cases_world["client"]["admin"], **params)
        assert [r["external_id"] for r in records] == expected


class TestCsv:
    def test_reads_back_with_a_csv_reader(self, cases_world: dict[str, Any]) -> None:
        data = body(cases_world["client"]["admin"].get(URL, {"format": "csv"})).decode()
        rows = list(csv.DictReader(io.StringIO(data)))
        assert [r["external_id"] for r in rows] == ["'=cmd", "ext-b", "ext-a"]
        c, b, a = rows
        assert a["label"] == "ok"
        assert a["model_version"] == cases_world["versions"]["v1"].tag
        assert float(a["confidence"]) == 0.97
        assert json.loads(a["metadata"]) == {"line": 1}
        assert json.loads(a["verdicts"]) == []
        assert b["label"] == "crack"
        assert b["decision_label"] == "scratch"
        assert c["confidence"] == ""
        assert json.loads(c["metadata"]) == {"note": "needs, a comma"}
        assert [v["comment"] for v in json.loads(c["verdicts"])] == [
            "clear crack on the left",
            "",
        ]
        assert a["image_url"].endswith(f"/api/v1/cases/{cases_world['cases']['a'].id}/image/")

    def test_a_cell_that_a_spreadsheet_would_run_is_defused(
        self, cases_world: dict[str, Any]
    ) -> None:
        data = body(cases_world["client"]["admin"].get(URL, {"format": "csv", "source": "human"}))
        assert b",'=cmd," in data

    def test_headers(self, cases_world: dict[str, Any]) -> None:
        response = cases_world["client"]["admin"].get(URL, {"format": "csv"})
        assert response["Content-Type"].startswith("text/csv")
        assert 'filename="line-' in response["Content-Disposition"]
        assert response["Content-Disposition"].endswith('.csv"')
        body(response)


class TestZip:
    def test_an_image_folder_per_label(self, cases_world: dict[str, Any]) -> None:
        response = cases_world["client"]["admin"].get(URL, {"format": "zip"})
        assert response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(body(response)))
        assert archive.testzip() is None
        cases = cases_world["cases"]
        assert sorted(archive.namelist()) == sorted(
            [
                f"crack/{cases['c'].id}.png",
                f"crack/{cases['b'].id}.png",
                f"ok/{cases['a'].id}.png",
            ]
        )
        for name in archive.namelist():
            assert archive.read(name) == cases_world["image"]

    def test_a_missing_image_is_listed_not_fatal(self, cases_world: dict[str, Any]) -> None:
        from workflows.models import Case

        Case.objects.filter(pk=cases_world["cases"]["a"].pk).update(image="cases/gone.png")
        archive = zipfile.ZipFile(
            io.BytesIO(body(cases_world["client"]["admin"].get(URL, {"format": "zip"})))
        )
        assert archive.read("MISSING.txt").decode().split() == [str(cases_world["cases"]["a"].id)]
        assert len([n for n in archive.namelist() if n.endswith(".png")]) == 2


class TestWhoMayExport:
    def test_reviewers_may_not(self, cases_world: dict[str, Any]) -> None:
        assert cases_world["client"]["reviewer"].get(URL).status_code == 403

    def test_submitters_may_not(self, cases_world: dict[str, Any]) -> None:
        assert cases_world["client"]["submitter"].get(URL).status_code == 403

    def test_another_workflows_admin_gets_404(self, cases_world: dict[str, Any]) -> None:
        assert cases_world["client"]["other_admin"].get(URL).status_code == 404

    def test_a_non_member_gets_404(self, cases_world: dict[str, Any]) -> None:
        assert cases_world["client"]["outsider"].get(URL).status_code == 404

    def test_anonymous_is_refused(self, cases_world: dict[str, Any]) -> None:
        from rest_framework.test import APIClient

        assert APIClient().get(URL).status_code in (401, 403)

    def test_the_other_workflow_exports_its_own_cases_only(
        self, cases_world: dict[str, Any]
    ) -> None:
        data = body(cases_world["client"]["other_admin"].get("/api/v1/workflows/other/export/"))
        records = [json.loads(line) for line in data.decode().splitlines()]
        assert [r["case_id"] for r in records] == [str(cases_world["cases"]["other"].id)]


class TestBadInput:
    @pytest.mark.parametrize(
        "name, value",
        [
            ("format", "xlsx"),
            ("format", "json"),
            ("label", "dent"),
            ("created_after", "soon"),
            ("cursor", "abc"),
            ("limit", "5"),
            ("colour", "red"),
        ],
    )
    def test_is_a_json_400_naming_the_parameter(
        self, cases_world: dict[str, Any], name: str, value: str
    ) -> None:
        response = cases_world["client"]["admin"].get(URL, {name: value})
        assert response.status_code == 400, response
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["field"] == name


class TestStreaming:
    def test_rows_are_made_as_they_are_sent(
        self, cases_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from workspace import export

        monkeypatch.setattr(export, "EXPORT_BATCH", 2)
        response = cases_world["client"]["admin"].get(URL, {"format": "jsonl"})
        assert response.streaming
        chunks = iter(response.streaming_content)
        with CaptureQueriesContext(connection) as first_queries:
            first = next(chunks)
        # The first chunk is the first batch only: two rows, read and written before the
        # rest of the export is even asked for.
        assert len(first.decode().splitlines()) == 2
        with CaptureQueriesContext(connection) as rest_queries:
            rest = b"".join(chunks)
        assert len(rest.decode().splitlines()) == 1
        # The second batch's verdicts were read only when it was asked for.
        assert any("review_verdict" in q["sql"] for q in rest_queries.captured_queries)
        assert any("review_verdict" in q["sql"] for q in first_queries.captured_queries)

    def test_the_generators_touch_nothing_until_iterated(self, cases_world: dict[str, Any]) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from workflows.inputs import CaseFilters
        from workspace.export import export_csv, export_jsonl, export_zip

        with CaptureQueriesContext(connection) as queries:
            made = [
                export_jsonl(workflow=cases_world["line"], filters=CaseFilters(), image_url=str),
                export_csv(workflow=cases_world["line"], filters=CaseFilters(), image_url=str),
                export_zip(workflow=cases_world["line"], filters=CaseFilters()),
            ]
        assert queries.captured_queries == []
        assert all(hasattr(gen, "__next__") for gen in made)


class TestHead:
    def test_says_how_many_rows_and_bytes(self, cases_world: dict[str, Any]) -> None:
        client = cases_world["client"]["admin"]
        response = client.head(URL, {"format": "jsonl", "label": "crack"})
        assert response.status_code == 200
        assert response["X-Export-Rows"] == "2"
        assert "X-Export-Bytes" not in response
        response = client.head(URL, {"format": "zip"})
        assert response["X-Export-Rows"] == "3"
        assert int(response["X-Export-Bytes"]) > 3 * len(cases_world["image"])

    def test_is_refused_like_the_export(self, cases_world: dict[str, Any]) -> None:
        assert cases_world["client"]["reviewer"].head(URL).status_code == 403
        assert cases_world["client"]["other_admin"].head(URL).status_code == 404
        assert cases_world["client"]["admin"].head(URL, {"format": "pdf"}).status_code == 400
