"""A new team's whole first day in one flow, in a real headless Chromium.

A workflow admin who is not a superuser creates a workflow with ten labels from the home
page, adds a reviewer (who sets a password with the one-time link in a browser of their
own), creates an API token, and sends cases with it over the REST API. The reviewer
reviews them by keyboard; the admin finds one case by its external id, reads its story
(timeline, the reviewer's verdict) and exports the workflow's labels, reading the file
back. Every page passes axe-core and the strict Content Security Policy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import axe_violations, watch_csp
from tests.conftest import image_bytes
from workflows.models import Case, CaseStatus, Workflow
from workspace.services import workflow_creator_grant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/work/notes/shots")
SHOWN = (
    "() => { const i = document.getElementById('case-image');"
    " return i && !i.hidden && i.complete && i.naturalWidth > 0; }"
)
PASSWORD = "ample-Harbor-91"


def _shot(page: Any, output_dir: Path, name: str) -> None:
    path = output_dir / name
    page.screenshot(path=str(path), full_page=True)
    if SHOTS.is_dir():
        shutil.copy(path, SHOTS / name)


def test_a_team_sets_up_reviews_finds_and_exports_in_one_flow(
    logged_in: Any, live_server: Any, make_user: Any, output_dir: Path
) -> None:
    # The server's first request imports every app (the ML core too): not within the
    # browser's page timeout on a busy machine, so it is made here first.
    assert requests.get(f"{live_server.url}/login/", timeout=300).status_code == 200
    cora = make_user("cora")
    workflow_creator_grant(user=cora)
    assert not cora.is_superuser and not cora.is_staff
    admin = logged_in("cora")
    problems: list[str] = []

    def check(page: Any, name: str) -> None:
        page.wait_for_load_state("networkidle")
        problems.extend(f"{name}: {line}" for line in axe_violations(page))

    # 1. A workflow with labels 0..9, from the home page's button.
    check(admin, "home (admin)")
    admin.get_by_role("link", name="New workflow").click()
    admin.wait_for_url(f"{live_server.url}/workflows/new/")
    check(admin, "new workflow")
    admin.get_by_label("Slug").fill("digits")
    admin.get_by_label("Name").fill("Digit sorting")
    admin.get_by_label("Labels").fill("\n".join(str(d) for d in range(10)))
    admin.get_by_role("button", name="Create workflow").click()
    admin.wait_for_url(f"{live_server.url}/workflows/digits/settings/members/")
    workflow = Workflow.objects.get(slug="digits")
    assert workflow.labels == [str(d) for d in range(10)] and workflow.level == "human_only"

    # 2. A reviewer, from the members page: the one-time link is shown.
    admin.get_by_label("Username").fill("rex")
    admin.get_by_label("Role", exact=True).select_option("reviewer")
    admin.get_by_role("button", name="Add member").click()
    link = admin.get_by_test_id("invite-link").input_value()
    assert "/account/set-password/" in link
    check(admin, "members")

    # 3. A token: its key is shown once.
    admin.get_by_role("link", name="API tokens").click()
    admin.get_by_label("Name").fill("sorter-camera")
    admin.get_by_role("button", name="Create token").click()
    key = admin.get_by_test_id("token-key").input_value()
    assert len(key) > 30
    check(admin, "tokens")

    # 4. Cases, sent with the token over the REST API. At human_only the model does not
    # run: intake routes each case to review at once, no worker needed. Unhappy path
    # first: no token, no case.
    def send(external_id: str, seed: int, token: str | None) -> requests.Response:
        return requests.post(
            f"{live_server.url}/api/v1/workflows/digits/cases/",
            headers={"Authorization": f"Token {token}"} if token else {},
            files={"image": (f"{external_id}.png", image_bytes(seed=seed), "image/png")},
            data={"external_id": external_id},
            timeout=30,
        )

    assert send("board-x", 0, None).status_code in (401, 403)
    external_ids = [f"board-{n:02d}" for n in range(4)]
    for seed, external_id in enumerate(external_ids):
        response = send(external_id, seed, key)
        assert response.status_code == 201, response.text
    assert not Case.objects.filter(external_id="board-x").exists()
    assert set(Case.objects.filter(workflow=workflow).values_list("status", flat=True)) == {
        CaseStatus.IN_REVIEW
    }

    # 5. The reviewer sets a password with the link, in a browser of their own, logs in.
    context = admin.context.browser.new_context(viewport={"width": 1280, "height": 800})
    refused = watch_csp(context)
    reviewer = context.new_page()
    reviewer.set_default_timeout(15_000)
    reviewer.goto(link)
    check(reviewer, "set password")
    reviewer.get_by_label("New password").fill(PASSWORD)
    reviewer.get_by_label("Again").fill(PASSWORD)
    reviewer.get_by_role("button", name="Set password").click()
    reviewer.wait_for_url(f"{live_server.url}/login/")
    reviewer.get_by_label("Username").fill("rex")
    reviewer.get_by_label("Password").fill(PASSWORD)
    reviewer.get_by_role("button", name="Log in").click()
    reviewer.wait_for_url(f"{live_server.url}/")
    assert reviewer.locator("td[data-depth='4']").count() == 1
    check(reviewer, "home (reviewer)")

    # 6. They review every case by keyboard: a label's digit is its key.
    reviewer.get_by_role("link", name="Start reviewing").first.click()
    reviewer.wait_for_url(f"{live_server.url}/review/digits/")
    reviewer.wait_for_function(SHOWN)
    check(reviewer, "review screen")
    given: dict[str, str] = {}
    for position, digit in enumerate(["7", "3", "0", "9"]):
        current = reviewer.locator("#case-name").inner_text()
        reviewer.keyboard.press(digit)
        given[current] = digit
        reviewer.wait_for_function(
            "(n) => document.querySelectorAll('#recent li').length >= n", arg=position + 1
        )
        if position < len(external_ids) - 1:
            reviewer.wait_for_function(
                "(previous) => document.getElementById('case-name').textContent !== previous",
                arg=current,
            )
    assert set(given) == set(external_ids), given
    decided = dict(
        Case.objects.filter(workflow=workflow).values_list("external_id", "decision_label")
    )
    assert decided == given
    reviewer.goto("about:blank")
    reviewer.wait_for_timeout(150)
    context.close()
    assert not refused, "\n".join(refused)

    # 7. The admin finds one case by its external id and reads its story.
    wanted = "board-02"
    admin.goto(f"{live_server.url}/")
    admin.get_by_role("link", name="Cases of Digit sorting").click()
    admin.wait_for_url(f"{live_server.url}/workflows/digits/cases/")
    rows = admin.locator("table.cases tbody tr")
    assert rows.count() == 4
    admin.get_by_label("External id").fill(wanted)
    admin.get_by_role("button", name="Find cases").click()
    admin.wait_for_url(f"**external_id={wanted}**")
    assert rows.count() == 1 and given[wanted] in rows.first.inner_text()
    check(admin, "case list")
    _shot(admin, output_dir, "journey-case-list.png")

    admin.get_by_role("link", name=wanted).click()
    case = Case.objects.get(workflow=workflow, external_id=wanted)
    admin.wait_for_url(f"**/workflows/digits/cases/{case.id}/")
    assert admin.get_by_role("heading", name="Timeline").is_visible()
    timeline = admin.locator("ol.timeline").inner_text()
    assert "in_review" in timeline and "decided" in timeline
    verdicts = admin.locator("section", has=admin.get_by_role("heading", name="Verdicts"))
    assert "rex" in verdicts.inner_text() and given[wanted] in verdicts.inner_text()
    check(admin, "case page")
    _shot(admin, output_dir, "journey-case-page.png")

    # 8. The export, from the button, read back: every case with rex's label.
    admin.goto(f"{live_server.url}/workflows/digits/cases/")
    with admin.expect_download() as download_info:
        admin.get_by_role("link", name="JSON Lines").click()
    lines = Path(download_info.value.path()).read_text(encoding="utf-8").splitlines()
    records = {row["external_id"]: row for row in map(json.loads, lines)}
    assert {eid: row["label"] for eid, row in records.items()} == given
    for external_id, row in records.items():
        assert row["label_source"] == "human"
        assert [(v["reviewer"], v["label"]) for v in row["verdicts"]] == [
            ("rex", given[external_id])
        ]

    # The page follows the same export and says when it is done.
    admin.wait_for_function(
        "() => document.getElementById('export-status').textContent.startsWith('Done')"
    )
    assert "4 cases" in admin.locator("#export-status").inner_text()

    assert not problems, "\n".join(problems)
