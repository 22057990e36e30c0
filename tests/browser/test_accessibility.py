"""axe-core on every product page: no serious or critical accessibility violation.

Every page a signed-in admin can reach is listed in PRODUCT_PAGES; a new page adds its
path here. The pages are also checked in the states a person brings them to: a
confirmation dialog open, the workflow switcher open. The review screen has its own
test below: it has two known findings of its own, and that test fails until they are
fixed, without hiding the result of every other page.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRODUCT_PAGES = (
    "/",
    "/review/axe/history/",
    "/automation/",
    "/workflows/axe/automation/",
    "/models/",
    "/models/axe/",
    "/models/axe/compare/",
    "/review/axe/reviewers/",
    "/review/axe/reviewers/?period=week",
    "/workflows/new/",
    "/workflows/axe/settings/",
    "/workflows/axe/settings/labels/",
    "/workflows/axe/settings/review/",
    "/workflows/axe/settings/members/",
    "/workflows/axe/settings/tokens/",
    "/workflows/axe/settings/training/",
    "/account/set-password/MQ/not-a-token/",
    "/workflows/axe/cases/",
    "/workflows/axe/cases/{case}/",
    "/workflows/axe/cases/upload/",
    "/monitoring/",
    "/workflows/axe/monitoring/",
)
REVIEW_SCREEN = "/review/axe/"


@pytest.fixture
def axe_workflow(make_user: Any, make_workflow: Any, member: Any) -> Any:
    from modelops.models import Deployment, ModelVersion
    from tests.review.factories import case_in_review
    from workspace.services import workflow_creator_grant

    workflow = make_workflow("axe", level="assistance", serving=False)
    case_in_review(workflow)
    versions = [
        ModelVersion.objects.create(
            name="axe-cnn",
            version=number,
            architecture="fake",
            labels=list(workflow.labels),
            weights="models/fake.pt",
            sha256="0" * 64,
        )
        for number in (1, 2)
    ]
    Deployment.objects.create(workflow=workflow, model_version=versions[0], role="serving")
    Deployment.objects.create(workflow=workflow, model_version=versions[1], role="shadow")
    from automation.models import Alert

    # A firing alert: the alerts badge is in the navigation bar of every page checked.
    Alert.objects.create(workflow=workflow, kind="input_drift", message="brightness", data={})
    admin = make_user("ada")
    member(admin, workflow, submit=True, review=True, admin=True)
    member(admin, make_workflow("second", serving=False), review=True)
    workflow_creator_grant(user=admin)
    # An example image: the Labels settings page and the review screen show it.
    from tests.conftest import image_bytes
    from workspace.services import label_example_add

    label_example_add(
        workflow=workflow, actor=admin, label="crack", caption="across", image_data=image_bytes()
    )
    return workflow


def test_every_product_page_passes_axe(logged_in: Any, live_server: Any, axe_workflow: Any) -> None:
    page = logged_in("ada")
    case = axe_workflow.cases.first()
    found: list[str] = []
    for path in PRODUCT_PAGES:
        page.goto(f"{live_server.url}{path.format(case=case.id)}")
        page.wait_for_load_state("networkidle")
        found += [f"{path}: {line}" for line in axe_violations(page)]
    assert not found, "\n".join(found)


def test_pages_pass_axe_with_a_dialog_or_the_switcher_open(
    logged_in: Any, live_server: Any, axe_workflow: Any
) -> None:
    page = logged_in("ada")
    found: list[str] = []

    page.goto(f"{live_server.url}/models/axe/")
    page.get_by_label("Why promote it?").fill("better")
    page.get_by_role("button", name="Promote axe-cnn:v2 to serving").click()
    page.get_by_role("dialog", name="Promote axe-cnn:v2 to serving?").wait_for()
    found += [f"promote dialog: {line}" for line in axe_violations(page)]

    page.goto(f"{live_server.url}/workflows/axe/automation/")
    page.get_by_label("Level", exact=True).select_option("shadow")
    page.get_by_label("Reason for the change").fill("back to shadow")
    page.get_by_role("button", name="Save the policy").click()
    page.get_by_role("dialog", name="Change the level to Shadow?").wait_for()
    found += [f"level dialog: {line}" for line in axe_violations(page)]

    page.goto(f"{live_server.url}/review/axe/reviewers/")
    page.get_by_test_id("workflow-switcher").locator("summary").click()
    page.get_by_role("link", name="Second").wait_for()
    found += [f"switcher open: {line}" for line in axe_violations(page)]
    assert not found, "\n".join(found)


def test_the_login_page_passes_axe(chromium: Any, live_server: Any) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    found = axe_violations(page)
    context.close()
    assert not found, "\n".join(found)


def test_the_review_screen_passes_axe(logged_in: Any, live_server: Any, axe_workflow: Any) -> None:
    page = logged_in("ada")
    page.goto(f"{live_server.url}{REVIEW_SCREEN}")
    page.wait_for_load_state("networkidle")
    found = axe_violations(page)
    assert not found, "\n".join(f"{REVIEW_SCREEN}: {line}" for line in found)
