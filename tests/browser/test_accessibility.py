"""axe-core on every product page: no serious or critical accessibility violation.

Every page a signed-in admin can reach is listed in PRODUCT_PAGES; a new page adds its
path here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRODUCT_PAGES = (
    "/",
    "/review/axe/",
    "/automation/",
    "/workflows/axe/automation/",
    "/models/",
    "/models/axe/",
    "/models/axe/compare/",
    "/monitoring/",
    "/workflows/axe/monitoring/",
)


def test_every_product_page_passes_axe(
    logged_in: Any, live_server: Any, make_user: Any, make_workflow: Any, member: Any
) -> None:
    from tests.review.factories import case_in_review

    workflow = make_workflow("axe", level="assistance")
    case_in_review(workflow)
    admin = make_user("ada")
    member(admin, workflow, review=True, admin=True)
    page = logged_in("ada")
    found: list[str] = []
    for path in PRODUCT_PAGES:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        found += [f"{path}: {line}" for line in axe_violations(page)]
    assert not found, "\n".join(found)
