"""A new team runs its workflow from the product in a real headless Chromium: a workflow
admin who is not a superuser creates a workflow with ten labels, adds a reviewer (and sees
the one-time link), creates a token (and sees its key once), and a case sent with that
token is accepted. The invited reviewer chooses a password with the link and logs in.
Every page passes axe-core and the strict Content Security Policy; screenshots of each
settings page go to test-output/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import axe_violations
from tests.conftest import image_bytes
from workflows.models import Case, Workflow, WorkflowMembership
from workspace.services import workflow_creator_grant

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page: Any, output_dir: Path, name: str) -> None:
    page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)


def test_a_workflow_admin_sets_up_a_workflow_from_the_product(
    logged_in: Any, live_server: Any, make_user: Any, output_dir: Path
) -> None:
    # The server's first request imports every app (the ML core too): not within the
    # browser's page timeout on a busy machine, so it is made here first.
    assert requests.get(f"{live_server.url}/login/", timeout=300).status_code == 200
    cora = make_user("cora")
    workflow_creator_grant(user=cora)
    assert not cora.is_superuser and not cora.is_staff
    page = logged_in("cora")
    problems: list[str] = []

    def check(name: str) -> None:
        page.wait_for_load_state("networkidle")
        problems.extend(f"{name}: {line}" for line in axe_violations(page))

    # New workflow, from the home page's button: ten labels 0..9.
    page.get_by_role("link", name="New workflow").click()
    page.wait_for_url(f"{live_server.url}/workflows/new/")
    check("new")
    page.get_by_label("Slug").fill("pcb")
    page.get_by_label("Name").fill("PCB line 3")
    page.get_by_label("Labels").fill("\n".join(str(d) for d in range(10)))
    page.get_by_label("Instructions for reviewers (Markdown)").fill(
        "## What to look for\n\n- **0**: no defect\n- **1**..**9**: the defect class"
    )
    shot(page, output_dir, "workflow-new")
    page.get_by_role("button", name="Create workflow").click()
    page.wait_for_url(f"{live_server.url}/workflows/pcb/settings/members/")
    workflow = Workflow.objects.get(slug="pcb")
    assert workflow.labels == [str(d) for d in range(10)] and workflow.level == "human_only"

    # Members: add a reviewer who has no account yet; the link is shown once.
    page.get_by_label("Username").fill("rex")
    page.get_by_label("Role", exact=True).select_option("reviewer")
    page.get_by_role("button", name="Add member").click()
    link = page.get_by_test_id("invite-link").input_value()
    assert "/account/set-password/" in link
    check("members")
    shot(page, output_dir, "settings-members")
    assert WorkflowMembership.objects.get(workflow=workflow, user__username="rex").can_review

    # Tokens: the key is shown once.
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("line-3-camera")
    page.get_by_role("button", name="Create token").click()
    key = page.get_by_test_id("token-key").input_value()
    assert len(key) > 30
    check("tokens")
    shot(page, output_dir, "settings-tokens")
    page.reload()
    assert key not in page.content()

    # A case sent with the token is accepted, into this workflow's review queue.
    response = requests.post(
        f"{live_server.url}/api/v1/workflows/pcb/cases/",
        headers={"Authorization": f"Token {key}"},
        files={"image": ("part.png", image_bytes(), "image/png")},
        data={"external_id": "board-0001"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert Case.objects.get(external_id="board-0001").workflow_id == workflow.pk

    # The other settings pages.
    for name, link_text in (
        ("settings-labels", "Labels and hotkeys"),
        ("settings-review", "Review"),
        ("settings-general", "General"),
    ):
        page.get_by_role("navigation", name="Settings").get_by_role("link", name=link_text).click()
        page.wait_for_load_state("networkidle")
        check(name)
        shot(page, output_dir, name)
    assert "What to look for" in page.get_by_test_id("instructions-preview").inner_text()

    # The invited reviewer chooses a password with the link, then logs in.
    context = page.context.browser.new_context()
    invited = context.new_page()
    invited.goto(link)
    invited.wait_for_load_state("networkidle")
    problems.extend(f"set-password: {line}" for line in axe_violations(invited))
    invited.get_by_label("New password").fill("ample-Harbor-91")
    invited.get_by_label("Again").fill("ample-Harbor-91")
    invited.get_by_role("button", name="Set password").click()
    invited.wait_for_url(f"{live_server.url}/login/")
    invited.get_by_label("Username").fill("rex")
    invited.get_by_label("Password").fill("ample-Harbor-91")
    invited.get_by_role("button", name="Log in").click()
    invited.wait_for_url(f"{live_server.url}/")
    context.close()

    assert not problems, "\n".join(problems)
