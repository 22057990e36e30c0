"""The review screen in a real Chromium: keyboard review, suggestion rules, undo, and two
reviewers side by side. Saves a screenshot and prints the verdict-to-next-image time."""

from __future__ import annotations

import json
import statistics

import pytest

from review.models import Assignment, Verdict
from tests.conftest import image_bytes
from tests.review import factories
from workflows.models import Case, CaseStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABEL_CYCLE = ("ok", "scratch", "crack", "stain")
SHOWN = (
    "() => { const i = document.getElementById('case-image');"
    " return i && !i.hidden && i.complete && i.naturalWidth > 0; }"
)


def queue(workflow, count: int, *, prefix: str, prediction=None) -> list[Case]:
    cases = []
    for index in range(count):
        label = LABEL_CYCLE[index % len(LABEL_CYCLE)]
        case, _ = factories.case_in_review(
            workflow,
            image_data=image_bytes(label, seed=index),
            external_id=f"{prefix}-{index:03d}",
            metadata={"line": index % 3 + 1, "operator_note": "<img src=x onerror=alert(1)>"},
            prediction=prediction,
        )
        cases.append(case)
    return cases


def open_queue(page, slug: str) -> None:
    page.get_by_role("link", name="Start reviewing").first.click()
    page.wait_for_url(f"**/review/{slug}/")
    page.wait_for_function(SHOWN)


def shown_case(page) -> str:
    return page.locator("#case-name").inner_text()


def next_shown(page, previous: str) -> str:
    page.wait_for_function(
        "(previous) => { const name = document.getElementById('case-name').textContent;"
        " return name !== previous; }",
        arg=previous,
    )
    return shown_case(page)


def wait_saved(page, count: int) -> None:
    page.wait_for_function("(n) => document.querySelectorAll('#recent li').length >= n", arg=count)


def test_review_by_keyboard_with_undo_and_timing(logged_in, output_dir, live_server):
    workflow = factories.workflow_create("surface", level="human_only")
    reviewer = factories.reviewer_create("kim", workflow)
    queue(workflow, 8, prefix="part")

    page = logged_in("kim")
    assert page.locator("td[data-depth='8']").count() == 1
    page.screenshot(path=str(output_dir / "review-home.png"))
    open_queue(page, "surface")
    # Untrusted metadata is shown as text, never as markup.
    assert page.locator("#metadata dd", has_text="<img src=x onerror=alert(1)>").count() == 1
    assert page.locator("#metadata img").count() == 0

    # Zoom by keyboard, then back to fit; Escape closes the skip dialog without skipping.
    fitted = page.locator("#zoom-level").inner_text()
    page.keyboard.press("+")
    assert page.locator("#zoom-level").inner_text() != fitted
    page.keyboard.press("f")
    assert page.locator("#zoom-level").inner_text() == fitted
    before_cancel = shown_case(page)
    page.keyboard.press("s")
    page.locator("#skip-dialog[open]").wait_for()
    page.keyboard.press("Escape")
    page.locator("#skip-dialog").wait_for(state="hidden")
    assert shown_case(page) == before_cancel

    given: dict[str, str] = {}
    keys = ["1", "2", "r", "4", "k"]
    for position, key in enumerate(keys):
        current = shown_case(page)
        page.wait_for_timeout(350)  # a reviewer looks; the prefetch lands meanwhile
        page.keyboard.press(key)
        given[current] = {"1": "ok", "k": "ok", "2": "scratch", "r": "crack", "4": "stain"}[key]
        next_shown(page, current)
        wait_saved(page, position + 1)

    decided = dict(
        Case.objects.filter(external_id__in=given).values_list("external_id", "decision_label")
    )
    assert decided == given
    assert Verdict.objects.filter(reviewer=reviewer).count() == len(keys)

    # Undo: the last case comes back, the decision is withdrawn, and a new key decides it.
    last = list(given)[-1]
    before_undo = shown_case(page)
    page.keyboard.press("u")
    assert next_shown(page, before_undo) == last
    page.wait_for_function("() => document.getElementById('status').textContent.includes('Undone')")
    undone = Case.objects.get(external_id=last)
    assert undone.status == CaseStatus.IN_REVIEW and undone.decision_label == ""
    page.keyboard.press("3")
    next_shown(page, last)
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('Saved')"
    )
    assert Case.objects.get(external_id=last).decision_label == "crack"

    # Skip with a reason, by keyboard: S, pick reason 2, Enter.
    skipped = shown_case(page)
    page.keyboard.press("s")
    page.locator("#skip-dialog[open]").wait_for()
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    next_shown(page, skipped)
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('Skipped')"
    )
    assert (
        Assignment.objects.get(
            reviewer=reviewer, task__case__external_id=skipped, state="skipped"
        ).skip_reason
        == "not sure of the label"
    )

    timings = page.evaluate(
        "() => performance.getEntriesByName('verdict-to-next-image').map(e => e.duration)"
    )
    assert len(timings) >= len(keys)
    print(
        f"\nverdict key press -> next image shown: median {statistics.median(timings):.1f} ms, "
        f"max {max(timings):.1f} ms over {len(timings)} verdicts"
    )


def test_shadow_hides_the_suggestion_and_assistance_shows_it(logged_in, output_dir, live_server):
    version = factories.model_version_create()
    shadow = factories.workflow_create("shadow-line", level="shadow")
    assisted = factories.workflow_create("assisted-line", level="assistance")
    for workflow in (shadow, assisted):
        factories.reviewer_create("sue", workflow)
        queue(workflow, 3, prefix=workflow.slug, prediction=(version, "crack", 0.8731))

    page = logged_in("sue")
    api_bodies: list[str] = []
    page.on(
        "response",
        lambda response: api_bodies.append(response) if "/review/next/" in response.url else None,
    )
    page.goto(f"{live_server.url}/review/shadow-line/")
    page.wait_for_function(SHOWN)
    page.wait_for_timeout(300)
    html = page.content()
    assert page.locator("#suggestion").is_hidden()
    assert "0.8731" not in html and "87%" not in html and "Model suggestion" not in html
    texts = [response.text() for response in api_bodies]
    assert texts and all("suggestion" not in text and "0.8731" not in text for text in texts)
    source = page.evaluate("() => document.documentElement.outerHTML")
    assert "0.8731" not in source

    page.goto(f"{live_server.url}/review/assisted-line/")
    page.wait_for_function(SHOWN)
    suggestion = page.locator("#suggestion")
    suggestion.wait_for(state="visible")
    assert "crack" in suggestion.inner_text() and "87% confident" in suggestion.inner_text()
    page.wait_for_timeout(300)
    page.screenshot(path=str(output_dir / "review-screen.png"))

    tablet = logged_in("sue", width=820, height=1180)
    tablet.goto(f"{live_server.url}/review/assisted-line/")
    tablet.wait_for_function(SHOWN)
    assert tablet.locator(".label-button").first.is_visible()
    tablet.screenshot(path=str(output_dir / "review-screen-tablet.png"), full_page=True)


def test_two_reviewers_never_see_the_same_case(logged_in, live_server):
    workflow = factories.workflow_create("pair-line", level="human_only")
    factories.reviewer_create("ann", workflow)
    factories.reviewer_create("bob", workflow)
    queue(workflow, 10, prefix="item")

    ann, bob = logged_in("ann"), logged_in("bob")
    open_queue(ann, "pair-line")
    open_queue(bob, "pair-line")
    seen = {"ann": [shown_case(ann)], "bob": [shown_case(bob)]}
    for _ in range(3):
        for name, page in (("ann", ann), ("bob", bob)):
            page.wait_for_timeout(250)
            current = seen[name][-1]
            page.keyboard.press("1")
            seen[name].append(next_shown(page, current))

    assert not set(seen["ann"]) & set(seen["bob"]), json.dumps(seen)
    leased = {
        name: set(
            Assignment.objects.filter(reviewer__username=name).values_list("task_id", flat=True)
        )
        for name in ("ann", "bob")
    }
    assert not leased["ann"] & leased["bob"]
