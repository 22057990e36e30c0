"""The navigation bar: its registry, who sees which entries, where they lead, what is
current, and the bar as rendered on the pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loopgate.navigation import SECTIONS, Section, current_section, navigation

pytestmark = pytest.mark.django_db

EVERY_SECTION = ["review", "cases", "reviewers", "automation", "monitoring", "models", "settings"]


@pytest.fixture
def people(make_user: Any, make_workflow: Any, member: Any) -> dict[str, Any]:
    line = make_workflow("line", serving=False)
    other = make_workflow("other", serving=False)
    reviewer = make_user("rita")
    member(reviewer, line, review=True)
    admin = make_user("ada")
    member(admin, line, admin=True)
    member(admin, other, review=True)
    submitter = make_user("sam")
    member(submitter, line, submit=True)
    return {
        "line": line,
        "other": other,
        "reviewer": reviewer,
        "admin": admin,
        "submitter": submitter,
        "root": make_user("root", superuser=True),
        "stranger": make_user("olga"),
    }


def keys(nav: Any) -> list[str]:
    return [entry.key for entry in nav.entries]


def urls(nav: Any) -> dict[str, str]:
    return {entry.key: entry.url for entry in nav.entries}


def test_every_registered_url_name_exists() -> None:
    for section in SECTIONS:
        if section.index:
            reverse(section.index)
        if section.workflow_page:
            reverse(section.workflow_page, args=["some-workflow"])
        assert section.views, f"{section.key} says which views belong to it"


def test_nobody_signed_in_gets_no_bar() -> None:
    nav = navigation(user=AnonymousUser(), view_name="login")
    assert nav.entries == () and nav.admin_url is None


def test_a_reviewer_sees_review_and_cases_only(people: dict[str, Any]) -> None:
    nav = navigation(user=people["reviewer"], view_name="review:home")
    assert keys(nav) == ["review", "cases"]
    assert nav.admin_url is None
    assert nav.entries[0].current


def test_a_member_without_workflows_sees_review_home(people: dict[str, Any]) -> None:
    nav = navigation(user=people["stranger"], view_name="review:home")
    assert urls(nav) == {"review": "/"}


def test_a_submitter_is_led_to_the_upload_page_and_nowhere_else(people: dict[str, Any]) -> None:
    nav = navigation(user=people["submitter"], view_name="review:home")
    assert urls(nav) == {"review": "/", "upload": "/workflows/line/cases/upload/"}
    nav = navigation(user=people["submitter"], view_name="processing:upload", workflow_slug="line")
    assert [e.key for e in nav.entries if e.current] == ["upload"]


def test_a_workflow_admin_sees_every_section_but_not_the_django_admin(
    people: dict[str, Any],
) -> None:
    nav = navigation(user=people["admin"], view_name="automation:index")
    assert keys(nav) == [
        "review",
        "cases",
        "reviewers",
        "automation",
        "monitoring",
        "models",
        "settings",
    ]
    assert nav.admin_url is None
    assert [e.key for e in nav.entries if e.current] == ["automation"]
    # No page of one workflow: the index pages; the section that has none goes to the
    # first workflow where the user holds its right.
    assert urls(nav) == {
        "review": "/",
        "cases": "/workflows/line/cases/",
        "reviewers": "/review/line/reviewers/",
        "automation": "/automation/",
        "monitoring": "/monitoring/",
        "models": "/models/",
        "settings": "/workflows/line/settings/",
    }


def test_on_a_workflow_page_the_entries_lead_to_that_workflows_pages(
    people: dict[str, Any],
) -> None:
    nav = navigation(user=people["admin"], view_name="modelops:compare", workflow_slug="line")
    assert nav.workflow is not None and nav.workflow.slug == "line"
    assert urls(nav) == {
        "review": "/review/line/",
        "cases": "/workflows/line/cases/",
        "reviewers": "/review/line/reviewers/",
        "automation": "/workflows/line/automation/",
        "monitoring": "/workflows/line/monitoring/",
        "models": "/models/line/",
        "settings": "/workflows/line/settings/",
    }
    assert [e.key for e in nav.entries if e.current] == ["models"]


def test_in_a_workflow_where_the_user_only_reviews_admin_sections_go_to_their_index(
    people: dict[str, Any],
) -> None:
    nav = navigation(user=people["admin"], view_name="review:screen", workflow_slug="other")
    assert urls(nav)["review"] == "/review/other/"
    assert urls(nav)["automation"] == "/automation/"
    assert urls(nav)["reviewers"] == "/review/line/reviewers/"


def test_the_switcher_keeps_the_section_where_it_can(people: dict[str, Any]) -> None:
    nav = navigation(user=people["admin"], view_name="automation:page", workflow_slug="line")
    switch = {entry.key: (entry.url, entry.current) for entry in nav.switch_to}
    assert switch == {
        "line": ("/workflows/line/automation/", True),
        # Not an admin of "other": its first section this user may open there.
        "other": ("/review/other/", False),
    }


def test_the_switcher_leaves_out_archived_workflows_but_the_current_one(
    people: dict[str, Any],
) -> None:
    people["other"].archived_at = timezone.now()
    people["other"].save(update_fields=["archived_at"])
    nav = navigation(user=people["admin"], view_name="automation:page", workflow_slug="line")
    assert [entry.key for entry in nav.switch_to] == ["line"]
    # On the archived workflow's own page it is still shown, as the current one.
    nav = navigation(user=people["admin"], view_name="review:screen", workflow_slug="other")
    assert [(entry.key, entry.current) for entry in nav.switch_to] == [
        ("line", False),
        ("other", True),
    ]


def test_a_workflow_the_user_cannot_see_gives_no_context(people: dict[str, Any]) -> None:
    nav = navigation(user=people["reviewer"], view_name="review:screen", workflow_slug="other")
    assert nav.workflow is None and nav.switch_to == ()
    assert urls(nav) == {"review": "/", "cases": "/workflows/line/cases/"}


def test_superusers_get_the_django_admin_link(people: dict[str, Any]) -> None:
    nav = navigation(user=people["root"], view_name="review:home")
    assert nav.admin_url == reverse("admin:index")
    assert keys(nav) == [
        "review",
        "cases",
        "upload",
        "reviewers",
        "automation",
        "monitoring",
        "models",
        "settings",
    ]


def test_current_section_prefers_an_exact_view_name() -> None:
    assert current_section("review:stats-page") == "reviewers"
    assert current_section("review:screen") == "review"
    assert current_section("modelops:training-cancel") == "models"
    assert current_section("login") is None
    assert current_section(None) is None


def test_a_new_section_is_one_entry(people: dict[str, Any]) -> None:
    sections = (
        *SECTIONS,
        Section("cases", "Cases", "can_submit", None, "review:screen", ("review:screen",)),
    )
    nav = navigation(
        user=people["submitter"], view_name="review:screen", workflow_slug="line",
        sections=sections,
    )  # fmt: skip
    assert urls(nav) == {
        "review": "/",
        "upload": "/workflows/line/cases/upload/",
        "cases": "/review/line/",
    }
    assert [e.key for e in nav.entries if e.current] == ["cases"]


def test_the_rights_are_read_in_one_query_and_the_alerts_in_one_more(
    people: dict[str, Any], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(2):
        navigation(user=people["admin"], view_name="automation:page", workflow_slug="line")
    with django_assert_num_queries(1):  # administers nothing: no alerts query
        navigation(user=people["reviewer"], view_name="review:screen", workflow_slug="line")


# --- The alerts badge -----------------------------------------------------------------------


def _alert(workflow: Any, *, state: str = "firing", kind: str = "input_drift") -> Any:
    from automation.models import Alert

    return Alert.objects.create(workflow=workflow, kind=kind, state=state, message="m", data={})


def test_no_badge_without_unacknowledged_alerts_where_the_user_administers(
    people: dict[str, Any],
) -> None:
    _alert(people["line"], state="acknowledged")  # someone is on it
    _alert(people["line"], state="resolved")
    _alert(people["other"])  # ada only reviews there
    for who in ("admin", "reviewer", "submitter", "stranger"):
        assert navigation(user=people[who], view_name="review:home").alerts is None, who
    assert navigation(user=AnonymousUser(), view_name="review:home").alerts is None


def test_an_archived_workflows_alerts_are_not_counted(people: dict[str, Any]) -> None:
    from django.utils import timezone

    _alert(people["line"])
    people["line"].archived_at = timezone.now()
    people["line"].save(update_fields=["archived_at"])
    assert navigation(user=people["admin"], view_name="review:home").alerts is None


def test_the_badge_counts_firing_alerts_and_leads_to_the_monitoring_page(
    people: dict[str, Any],
) -> None:
    _alert(people["line"])
    _alert(people["line"], kind="accuracy")
    _alert(people["line"], state="acknowledged")
    _alert(people["other"])
    badge = navigation(user=people["admin"], view_name="review:home").alerts
    assert badge is not None
    assert (badge.count, badge.label, badge.url) == (2, "Alerts: 2", "/workflows/line/monitoring/")
    assert badge.description == "2 alerts firing, not acknowledged, in Line"


def test_alerts_in_several_workflows_lead_to_the_monitoring_index(
    people: dict[str, Any],
) -> None:
    _alert(people["line"])
    _alert(people["other"])
    badge = navigation(user=people["root"], view_name="review:home").alerts
    assert badge is not None
    assert (badge.count, badge.url) == (2, "/monitoring/")
    assert badge.workflows == ("Line", "Other")
    assert badge.description == "2 alerts firing, not acknowledged, in Line, Other"


def test_the_badge_from_given_counts(people: dict[str, Any]) -> None:
    from loopgate.navigation import alerts_badge
    from workflows.access import WorkflowRights

    rights = [
        WorkflowRights("a", "A", frozenset({"can_admin"})),
        WorkflowRights("b", "B", frozenset({"can_review"})),
        WorkflowRights("c", "C", frozenset({"can_admin"}), archived=True),
    ]
    assert alerts_badge(rights, {"b": 3, "c": 4}) is None
    badge = alerts_badge(rights, {"a": 1, "b": 3, "c": 4})
    assert badge is not None
    assert (badge.label, badge.description) == (
        "Alerts: 1",
        "1 alert firing, not acknowledged, in A",
    )


def test_the_badge_on_every_page(people: dict[str, Any]) -> None:
    _alert(people["line"])
    client = Client()
    client.force_login(people["admin"])
    for url in ("/", "/automation/", "/models/line/compare/", "/workflows/line/monitoring/"):
        html = client.get(url).content.decode()
        assert (
            '<a href="/workflows/line/monitoring/" data-testid="alerts-badge" '
            'title="1 alert firing, not acknowledged, in Line">'
            'Alerts: 1<span class="visually-hidden"> firing, not acknowledged</span></a>'
        ) in html, url
    client.force_login(people["reviewer"])
    assert 'data-testid="alerts-badge"' not in client.get("/").content.decode()


def test_the_bar_on_the_pages(people: dict[str, Any]) -> None:
    client = Client()
    client.force_login(people["admin"])
    html = client.get("/models/line/compare/").content.decode()
    assert '<nav aria-label="Main"' in html
    assert 'href="/models/line/" data-section="models" aria-current="true"' in html
    assert 'data-testid="workflow-switcher"' in html and 'data-section="admin"' not in html
    html = client.get("/automation/").content.decode()
    assert 'href="/automation/" data-section="automation" aria-current="page"' in html
    assert 'data-testid="workflow-switcher"' not in html
    client.force_login(people["root"])
    assert 'data-section="admin"' in client.get("/").content.decode()
    login = Client().get("/login/").content.decode()
    assert '<nav aria-label="Main"' not in login
