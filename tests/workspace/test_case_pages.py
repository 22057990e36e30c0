"""The case list and case pages, server-side: access, what each reader sees, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def session(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def case_url(world: dict[str, Any], key: str, slug: str = "line") -> str:
    return f"/workflows/{slug}/cases/{world['cases'][key].id}/"


class TestCaseList:
    def test_lists_and_links_every_case(self, cases_world: dict[str, Any]) -> None:
        response = session(cases_world["users"]["admin"]).get("/workflows/line/cases/")
        assert response.status_code == 200
        html = response.content.decode()
        for key in ("a", "b", "c", "d", "e"):
            assert case_url(cases_world, key) in html
        assert "/api/v1/workflows/line/export/?format=csv" in html

    def test_filters_like_the_api(self, cases_world: dict[str, Any]) -> None:
        html = (
            session(cases_world["users"]["admin"])
            .get("/workflows/line/cases/", {"label": "crack", "external_id": ""})
            .content.decode()
        )
        assert case_url(cases_world, "b") in html
        assert case_url(cases_world, "c") in html
        assert case_url(cases_world, "a") not in html
        # The export buttons carry the filters.
        assert "export/?label=crack&amp;format=csv" in html

    def test_a_bad_value_is_a_400_page_naming_it(self, cases_world: dict[str, Any]) -> None:
        response = session(cases_world["users"]["admin"]).get(
            "/workflows/line/cases/", {"created_after": "soon"}
        )
        assert response.status_code == 400
        assert "created_after: must be an ISO 8601 date" in response.content.decode()

    def test_cursor_links_page_through(self, cases_world: dict[str, Any]) -> None:
        client = session(cases_world["users"]["admin"])
        html = client.get("/workflows/line/cases/", {"limit": 2}).content.decode()
        assert 'rel="next"' in html
        assert 'rel="prev"' not in html

    def test_a_reviewer_gets_no_model_filters_and_no_export(
        self, cases_world: dict[str, Any]
    ) -> None:
        client = session(cases_world["users"]["reviewer"])
        html = client.get("/workflows/line/cases/").content.decode()
        assert 'name="source"' not in html
        assert "/export/" not in html
        response = client.get("/workflows/line/cases/", {"source": "model"})
        assert response.status_code == 403
        assert "only workflow admins" in response.content.decode()

    @pytest.mark.parametrize("who, status", [("outsider", 404), ("other_admin", 404)])
    def test_non_members_get_404(self, cases_world: dict[str, Any], who: str, status: int) -> None:
        response = session(cases_world["users"][who]).get("/workflows/line/cases/")
        assert response.status_code == status

    def test_anonymous_goes_to_login(self, cases_world: dict[str, Any]) -> None:
        response = Client().get("/workflows/line/cases/")
        assert response.status_code == 302
        assert "/login/" in response["Location"]


class TestCasePage:
    def test_shows_the_story(self, cases_world: dict[str, Any]) -> None:
        response = session(cases_world["users"]["admin"]).get(case_url(cases_world, "c"))
        assert response.status_code == 200
        html = response.content.decode()
        assert "clear crack on the left" in html
        assert "in_review → decided" in html
        assert cases_world["versions"]["v1"].tag in html  # its prediction
        assert f"/api/v1/cases/{cases_world['cases']['c'].id}/image/" in html
        assert 'id="saliency-toggle"' in html

    def test_another_workflows_slug_is_404(self, cases_world: dict[str, Any]) -> None:
        client = session(cases_world["users"]["admin"])
        response = client.get(f"/workflows/other/cases/{cases_world['cases']['c'].id}/")
        assert response.status_code == 404

    @pytest.mark.parametrize("who", ["outsider", "other_admin"])
    def test_non_members_get_404(self, cases_world: dict[str, Any], who: str) -> None:
        response = session(cases_world["users"][who]).get(case_url(cases_world, "c"))
        assert response.status_code == 404

    def test_a_bad_case_id_is_404(self, cases_world: dict[str, Any]) -> None:
        client = session(cases_world["users"]["admin"])
        assert client.get("/workflows/line/cases/not-a-uuid/").status_code == 404

    def test_a_reviewer_sees_no_model_output_on_a_blind_case(
        self, cases_world: dict[str, Any]
    ) -> None:
        html = (
            session(cases_world["users"]["reviewer"])
            .get(case_url(cases_world, "c"))
            .content.decode()
        )
        # Shadow mode: the model's prediction (ok) and the overlay are not for reviewers.
        assert "Predictions" not in html
        assert 'id="saliency-toggle"' not in html
        assert "crack" in html  # what people decided

    def test_a_reviewer_does_not_see_others_verdicts_while_the_case_is_open(
        self, cases_world: dict[str, Any]
    ) -> None:
        from review.models import ReviewTask
        from tests.workspace.conftest import verdict

        case = cases_world["cases"]["d"]
        verdict(case, cases_world["users"]["admin"], "stain", comment="my own take")
        ReviewTask.objects.create(case=case, workflow=case.workflow, reason="human_only")
        reviewer_html = (
            session(cases_world["users"]["reviewer"])
            .get(case_url(cases_world, "d"))
            .content.decode()
        )
        assert "my own take" not in reviewer_html
        assert "once the case is no longer in review" in reviewer_html
        admin_html = (
            session(cases_world["users"]["admin"]).get(case_url(cases_world, "d")).content.decode()
        )
        assert "my own take" in admin_html
