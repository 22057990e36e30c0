"""The review screen's instructions panel in Chromium: the admin's example images per label
load when the panel opens, as small thumbnails named by label and caption; no template
source shows anywhere on the screen (finding 3); axe is clean with the panel open."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import axe_violations
from tests.browser.test_review_findings import open_screen, queue
from tests.conftest import image_bytes
from tests.review import factories
from workspace.services import label_example_add

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXAMPLES = (("crack", "runs across the part"), ("crack", ""), ("stain", "a dark patch"))


def test_the_instructions_show_each_labels_examples(logged_in, live_server, output_dir):
    workflow = factories.workflow_create("example-line", instructions="Look for **cracks** first.")
    admin = factories.reviewer_create("eda", workflow, admin=True)
    factories.reviewer_create("eli", workflow)
    for seed, (label, caption) in enumerate(EXAMPLES):
        label_example_add(
            workflow=workflow,
            actor=admin,
            label=label,
            caption=caption,
            image_data=image_bytes(label, seed=seed),
        )
    queue(workflow, 2, prefix="ex")
    page = logged_in("eli", width=1366, height=768)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/label-examples/" in r.url else None)
    open_screen(page, live_server, "example-line")

    # Finding 3: no template source (a comment that spans lines) reaches the screen.
    text = page.locator("body").inner_text()
    assert not re.search(r"\{#|#\}|\{%|%\}", text), text[:500]

    panel = page.locator("#instructions")
    assert panel.get_attribute("open") is None
    # Closed, the panel has fetched none of its thumbnails.
    assert fetched == []
    page.keyboard.press("i")
    assert panel.get_attribute("open") is not None
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#instructions img.example-thumb'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    thumbs = panel.locator("img.example-thumb")
    assert thumbs.count() == 3
    alts = [thumbs.nth(i).get_attribute("alt") for i in range(3)]
    assert alts == [
        "Example of crack: runs across the part",
        "Example of crack",
        "Example of stain: a dark patch",
    ]
    assert [panel.locator("figure figcaption").nth(i).inner_text() for i in range(2)] == [
        "crack",
        "stain",
    ]
    sizes = thumbs.evaluate_all("ims => ims.map(i => [i.getBoundingClientRect().width, i.loading])")
    assert all(width <= 80 and loading == "lazy" for width, loading in sizes)
    # Served from this origin (the Content Security Policy allows no other).
    assert len(fetched) == 3
    assert all(url.startswith(live_server.url) for url in fetched)
    assert not axe_violations(page)
    page.screenshot(path=str(output_dir / "review-screen-instructions.png"))
    page.keyboard.press("i")
    assert panel.get_attribute("open") is None
