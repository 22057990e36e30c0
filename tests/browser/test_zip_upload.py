"""The zip upload in Chromium: from the cases page, the upload's progress bar shows, and
the per-file results appear in the page without leaving it."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import axe_violations
from tests.review.factories import tiny_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def noisy_png(seed: int, size: int = 500) -> bytes:
    """A PNG that does not compress (random pixels): large enough to upload in steps."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_a_zip_with_a_progress_bar_and_see_each_result(
    logged_in: Any, live_server: Any, make_workflow: Any, make_user: Any, member: Any
) -> None:
    from workflows.models import Case

    workflow = make_workflow("line", level="shadow")
    member(make_user("sam"), workflow, submit=True, review=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("photos/big-1.png", noisy_png(1))
        zf.writestr("photos/big-2.png", noisy_png(2))
        zf.writestr("small.png", tiny_png(colour=(10, 200, 30)))
        zf.writestr("broken.png", tiny_png()[:40])
        zf.writestr("manifest.csv", "file,external_id\nsmall.png,S-1\n")

    page = logged_in("sam")
    cases_url = f"{live_server.url}/workflows/line/cases/"
    page.goto(cases_url)
    section = page.locator("section.zip-upload")
    progress = section.locator("progress")
    assert not progress.is_visible()
    # Record every value the bar takes while the upload runs.
    page.evaluate(
        """() => {
          window.barValues = [];
          const bar = document.querySelector('[data-upload-bar]');
          new MutationObserver(() => window.barValues.push(bar.getAttribute('value')))
            .observe(bar, {attributes: true, attributeFilter: ['value']});
        }"""
    )
    section.get_by_label("Zip file").set_input_files(
        {"name": "batch.zip", "mimeType": "application/zip", "buffer": buffer.getvalue()}
    )
    section.get_by_role("button", name="Upload").click()
    assert progress.is_visible()
    section.get_by_role("status").filter(has_text="Done.").wait_for()
    assert page.url == cases_url  # the results came into this page, no navigation

    # The bar followed the upload to 100 %, went indeterminate while the server stored
    # the images, and is full once the results are in.
    values = page.evaluate("window.barValues")
    uploaded = values.index(None)
    assert values[uploaded - 1] == "100", values
    assert values[-1] == "100", values
    summary = section.locator("[data-upload-summary]")
    assert summary.inner_text().startswith("3 accepted, 0 already submitted, 1 refused")
    table = section.get_by_role("region", name="Result per file")
    rows = {
        row.locator("th").inner_text(): row.locator("td").nth(1).inner_text()
        for row in table.locator("tbody tr").all()
    }
    assert rows == {
        "big-1.png": "accepted",
        "big-2.png": "accepted",
        "small.png": "accepted",
        "broken.png": "refused (400)",
    }
    assert (
        "image: the file is not an image" in table.locator("tr", has_text="broken.png").inner_text()
    )
    assert Case.objects.filter(workflow=workflow).count() == 3
    assert Case.objects.filter(external_id="S-1").exists()
    assert not axe_violations(page)

    # Each accepted file links to its case.
    table.locator("tr", has_text="small.png").get_by_role("link").click()
    page.wait_for_url(f"**/workflows/line/cases/{Case.objects.get(external_id='S-1').id}/")


def test_an_archive_refused_whole_says_why_in_the_page(
    logged_in: Any, live_server: Any, make_workflow: Any, make_user: Any, member: Any
) -> None:
    workflow = make_workflow("line", level="shadow")
    member(make_user("sam"), workflow, submit=True, review=True)
    page = logged_in("sam")
    page.goto(f"{live_server.url}/workflows/line/cases/upload/")
    section = page.locator("section.zip-upload")
    section.get_by_label("Zip file").set_input_files(
        {"name": "batch.zip", "mimeType": "application/zip", "buffer": b"not a zip at all"}
    )
    section.get_by_role("button", name="Upload").click()
    section.get_by_role("status").filter(has_text="The upload was refused.").wait_for()
    assert "not a zip archive" in section.get_by_role("alert").inner_text()
    assert "Nothing was stored." in section.inner_text()
