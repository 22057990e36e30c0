"""The case list and the case page in Chromium: find a case by its external id, open its
story (timeline, verdicts), export from the button and read the file back."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import axe_violations
from tests.workspace.conftest import build_cases_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/work/notes/shots")


@pytest.fixture
def cases_world(db: None, member: Any, client_for: Any, settings: Any) -> dict[str, Any]:
    return build_cases_world(member=member, client_for=client_for, settings=settings)


def _shot(page: Any, output_dir: Path, name: str) -> None:
    path = output_dir / name
    page.screenshot(path=str(path), full_page=True)
    if SHOTS.is_dir():
        shutil.copy(path, SHOTS / name)


def test_find_a_case_open_its_story_and_export(
    logged_in: Any,
    live_server: Any,
    cases_world: dict[str, Any],
    output_dir: Path,
) -> None:
    page = logged_in("ada")
    page.goto(f"{live_server.url}/workflows/line/cases/")
    rows = page.locator("table.cases tbody tr")
    assert rows.count() == 5
    assert not axe_violations(page)

    page.get_by_label("External id").fill("ext-b")
    page.get_by_role("button", name="Find cases").click()
    page.wait_for_url("**external_id=ext-b**")
    assert rows.count() == 1
    assert "crack" in rows.first.inner_text()
    _shot(page, output_dir, "cases-case-list.png")

    page.get_by_role("link", name="ext-b").click()
    page.wait_for_url(f"**/workflows/line/cases/{cases_world['cases']['b'].id}/")
    assert page.get_by_role("heading", name="Timeline").is_visible()
    timeline = page.locator("ol.timeline").inner_text()
    assert "processing → decided" in timeline
    assert "audit_label" in timeline
    verdicts = page.locator("section", has=page.get_by_role("heading", name="Verdicts"))
    assert "rita" in verdicts.inner_text()
    assert "crack" in verdicts.inner_text()
    predictions = page.locator("section", has=page.get_by_role("heading", name="Predictions"))
    assert cases_world["versions"]["v2"].tag in predictions.inner_text()
    assert page.locator("#case-image").evaluate("img => img.naturalWidth") == 8
    page.get_by_role("button", name="Zoom in").click()
    assert page.locator("#zoom-level").inner_text() == "150%"
    assert not axe_violations(page)
    _shot(page, output_dir, "cases-case-page.png")

    # Back to the list, filtered to the human-decided cases, and export them as CSV.
    page.goto(f"{live_server.url}/workflows/line/cases/?source=human")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("line-")
    text = Path(download.path()).read_text(encoding="utf-8")
    rows_out = list(csv.DictReader(io.StringIO(text)))
    assert [row["case_id"] for row in rows_out] == [str(cases_world["cases"]["c"].id)]
    assert [v["reviewer"] for v in json.loads(rows_out[0]["verdicts"])] == ["rita", "ada"]
    page.wait_for_function(
        "() => document.getElementById('export-status').textContent.startsWith('Done')"
    )
    assert "1 cases" in page.locator("#export-status").inner_text()


def test_a_reviewer_sees_the_list_without_model_filters_or_export(
    logged_in: Any,
    live_server: Any,
    cases_world: dict[str, Any],
) -> None:
    page = logged_in("rita")
    page.goto(f"{live_server.url}/workflows/line/cases/")
    assert page.locator("table.cases tbody tr").count() == 5
    assert page.get_by_label("Decided by").count() == 0
    assert page.get_by_role("link", name="CSV").count() == 0
    # A blind audit: the page shows no prediction and no model decision to a reviewer.
    page.goto(f"{live_server.url}/workflows/line/cases/{cases_world['cases']['b'].id}/")
    assert page.get_by_role("heading", name="Predictions").count() == 0
    assert "scratch" not in page.locator("main").inner_text()


def test_find_the_copies_of_an_image(
    logged_in: Any,
    live_server: Any,
    cases_world: dict[str, Any],
    output_dir: Path,
) -> None:
    from workflows.models import Case

    cases = cases_world["cases"]
    Case.objects.filter(pk__in=[cases["b"].pk, cases["c"].pk]).update(duplicate_of=cases["a"])
    page = logged_in("ada")
    page.goto(f"{live_server.url}/workflows/line/cases/")
    page.get_by_label("Duplicates").select_option("true")
    page.get_by_role("button", name="Find cases").click()
    page.wait_for_url("**duplicate=true**")
    rows = page.locator("table.cases tbody tr")
    assert rows.count() == 2
    assert not axe_violations(page)
    _shot(page, output_dir, "cases-duplicates-list.png")

    page.get_by_role("link", name="ext-b").click()
    page.wait_for_url(f"**/workflows/line/cases/{cases['b'].id}/")
    page.get_by_role("link", name="ext-a").click()
    page.wait_for_url(f"**/workflows/line/cases/{cases['a'].id}/")
    assert "2 later copies" in page.locator("dl.facts").first.inner_text()
    assert not axe_violations(page)
    _shot(page, output_dir, "case-later-copies.png")
    page.get_by_role("link", name="list all").click()
    page.wait_for_url(f"**duplicate_of={cases['a'].id}**")
    assert rows.count() == 2
