"""Every product page works under the Content Security Policy: nothing is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_no_page_breaks_the_content_security_policy(
    chromium: Any, live_server: Any, make_user: Any, make_workflow: Any, member: Any
) -> None:
    from tests.review.factories import case_in_review

    workflow = make_workflow("csp", level="assistance")
    case_in_review(workflow)
    admin = make_user("ada")
    member(admin, workflow, review=True, admin=True)

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    violations = watch_csp(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    response = page.goto(f"{live_server.url}/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("pw-for-tests-only")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    for path in (
        "/",
        "/review/csp/",
        "/automation/",
        "/workflows/csp/automation/",
        "/models/",
        "/models/csp/",
    ):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    # Inline script is refused: the policy really is enforced in this browser.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.x") is None
    refused = [v for v in violations if "inline script" in v]
    assert refused, "the probe's inline script should have been refused"
    others = [v for v in violations if v not in refused]
    context.close()
    assert not others, "\n".join(others)
