"""A real headless Chromium (Debian's) driven by Playwright, against the live server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
# still synchronous and safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
OUTPUT_DIR = ROOT / "test-output"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium per test module: Playwright's sync API allows one running instance
    per thread, so a module with its own launcher must not overlap with this one."""
    if not CHROMIUM.exists():
        message = "needs Debian's chromium at /usr/bin/chromium (scripts/browser.sh)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def watch_csp(context: Any) -> list[str]:
    """Collect what the browser refused under the Content Security Policy in ``context``.

    Chromium reports each violation as a console error ("Refused to execute inline
    script because it violates the following Content Security Policy directive ...").
    """
    violations: list[str] = []

    def on_console(message: Any) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            violations.append(f"{message.page.url if message.page else ''}: {text}")

    context.on("console", on_console)
    return violations


@pytest.fixture
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def logged_in(chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """A new browser context per reviewer, logged in through the login form."""
    contexts = []
    violations: list[list[str]] = []

    def open_as(username: str, *, width: int = 1280, height: int = 800) -> Any:
        context = chromium.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        violations.append(watch_csp(context))
        page = context.new_page()
        page.set_default_timeout(15_000)
        # The live server's first request imports every URL module (the ML core with
        # them): on a busy machine that alone can take longer than the default timeout.
        page.goto(f"{live_server.url}/login/", timeout=90_000)
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("pw-for-tests-only")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield open_as
    for context in contexts:
        # Leaving the page releases its leases; let those requests land while the live
        # server still accepts them, before the context closes.
        for page in context.pages:
            page.goto("about:blank")
            page.wait_for_timeout(150)
        context.close()
    refused = [line for found in violations for line in found]
    assert not refused, "Content Security Policy violations:\n" + "\n".join(refused)


def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core (from npm, see package.json) on the page as it is now.

    Returns one line per violation of the given impacts: rule, impact, and the first
    offending nodes. The script goes in through the DevTools protocol, so the page's
    Content Security Policy (no inline scripts) stays as served.
    """
    if not AXE.exists():
        pytest.fail(f"needs axe-core at {AXE} (scripts/install.sh runs npm ci)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    results = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {', '.join(v['nodes'])}"
        for v in results
        if v["impact"] in impacts
    ]
