"""The navigation bar of every product page, built from one registry of sections.

A section is a part of the product (Review, Automation, Models, ...). The registry says,
for each, which right it needs in a workflow, the URL name of its page over all
workflows and of its page for one workflow, and which views belong to it (to mark the
current one). ``navigation`` turns the registry, the user's rights (read once, from
``workflows.access.workflow_rights``) and the page being shown into what the bar shows.

Next to the sections, the alerts badge: how many alerts fire, not yet acknowledged, in
the workflows the user administers (one more query, only for people who administer a
workflow), leading to that workflow's monitoring page, or to the monitoring index when
they fire in several.

Adding a section is one line in ``SECTIONS``, for example::

    Section("cases", "Cases", "can_review", workflow_page="workspace:cases",
            views=("workspace:cases", "workspace:case")),
    Section("settings", "Settings", "can_admin", workflow_page="workspace:settings",
            views=("workspace:settings*",)),

A view pattern is a view name (``"review:stats-page"``), or a prefix ending in ``*``
(``"review:*"``: the whole namespace). Exact names win over prefixes, so a page of the
``review`` namespace can belong to another section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.urls import reverse

from accounts.types import RequestUser
from automation.selectors import alerts_unacknowledged_counts
from loopgate.admin_site import is_admin_site_user
from workflows.access import WorkflowRights, workflow_rights


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    right: str | None
    """The right needed in a workflow for the section's pages; None: every signed-in person."""
    index: str | None = None
    """URL name of the section's page over all workflows (no arguments)."""
    workflow_page: str | None = None
    """URL name of the section's page for one workflow (one argument: its slug)."""
    views: tuple[str, ...] = ()
    """The views that belong to the section: names, or prefixes ending in ``*``."""
    index_for_all: bool = False
    """The index page is for every signed-in person, whatever their rights."""


SECTIONS: tuple[Section, ...] = (
    Section("review", "Review", "can_review", "review:home", "review:screen", ("review:*",), True),
    Section(
        "cases",
        "Cases",
        "can_review",
        None,
        "workspace:cases",
        ("workspace:cases", "workspace:case"),
    ),
    Section("upload", "Upload", "can_submit", None, "processing:upload", ("processing:upload",)),
    Section(
        "reviewers", "Reviewers", "can_admin", None, "review:stats-page", ("review:stats-page",)
    ),
    Section(
        "automation",
        "Automation",
        "can_admin",
        "automation:index",
        "automation:page",
        ("automation:*",),
    ),
    Section(
        "monitoring",
        "Monitoring",
        "can_admin",
        "monitoring:index",
        "monitoring:page",
        ("monitoring:*",),
    ),
    Section("models", "Models", "can_admin", "modelops:home", "modelops:workflow", ("modelops:*",)),
    Section(
        "settings",
        "Settings",
        "can_admin",
        workflow_page="workspace:settings",
        views=("workspace:settings*",),
    ),
)


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str
    url: str
    current: bool = False


@dataclass(frozen=True)
class AlertsBadge:
    """Alerts firing, not yet acknowledged, in the workflows the user administers."""

    count: int
    url: str
    workflows: tuple[str, ...]
    """The names of the workflows where they fire, by name."""

    @property
    def label(self) -> str:
        return f"Alerts: {self.count}"

    @property
    def description(self) -> str:
        alerts = "alert" if self.count == 1 else "alerts"
        return f"{self.count} {alerts} firing, not acknowledged, in {', '.join(self.workflows)}"


@dataclass(frozen=True)
class Navigation:
    entries: tuple[NavEntry, ...] = ()
    workflow: WorkflowRights | None = None
    """The workflow the page belongs to, when it belongs to one the user can see."""
    switch_to: tuple[NavEntry, ...] = ()
    """The user's other workflows, each linked to the same section's page there."""
    admin_url: str | None = None
    """The Django admin, for superusers only."""
    current: str | None = None
    """The key of the section the page belongs to."""
    alerts: AlertsBadge | None = None
    """None when no alert waits for the user (or they administer no workflow)."""


def _matches(pattern: str, view_name: str) -> bool:
    if pattern.endswith("*"):
        return view_name.startswith(pattern[:-1])
    return pattern == view_name


def current_section(view_name: str | None, sections: Sequence[Section] = SECTIONS) -> str | None:
    """The key of the section ``view_name`` belongs to: an exact name first, then a prefix."""
    if not view_name:
        return None
    for exact in (True, False):
        for section in sections:
            for pattern in section.views:
                if pattern.endswith("*") != exact and _matches(pattern, view_name):
                    return section.key
    return None


def _holds(workflow: WorkflowRights, right: str | None) -> bool:
    return right is None or right in workflow.rights


def _url(name: str, *args: str) -> str:
    return reverse(name, args=args)


def _section_url(
    section: Section, context: WorkflowRights | None, workflows: Sequence[WorkflowRights]
) -> str | None:
    """Where the section's entry leads: the page's workflow's own page when there is one
    and the user holds the right there; else the page over all workflows, if the user
    holds the right somewhere (or it is for all); else the first workflow (by name) where
    they hold it. None: the user may not open the section; the entry is not shown."""
    holding = [w for w in workflows if not w.archived and _holds(w, section.right)]
    if context is not None and section.workflow_page and _holds(context, section.right):
        return _url(section.workflow_page, context.slug)
    if section.index and (holding or section.index_for_all or section.right is None):
        return _url(section.index)
    if section.workflow_page and holding:
        return _url(section.workflow_page, holding[0].slug)
    return None


def _switch_url(
    target: WorkflowRights, current: Section | None, sections: Sequence[Section]
) -> str | None:
    """The same section's page in ``target``, or its first section that has one."""
    ordered = ([current] if current is not None else []) + list(sections)
    for section in ordered:
        if section.workflow_page and _holds(target, section.right):
            return _url(section.workflow_page, target.slug)
    return None


def alerts_badge(
    workflows: Sequence[WorkflowRights], counts: dict[str, int] | None = None
) -> AlertsBadge | None:
    """The badge for the user's ``workflows``; ``counts`` (per slug) saves the query."""
    administered = [w for w in workflows if not w.archived and "can_admin" in w.rights]
    if counts is None:
        counts = alerts_unacknowledged_counts(workflow_slugs=[w.slug for w in administered])
    firing = [w for w in administered if counts.get(w.slug, 0) > 0]
    if not firing:
        return None
    url = _url("monitoring:page", firing[0].slug) if len(firing) == 1 else _url("monitoring:index")
    return AlertsBadge(
        count=sum(counts[w.slug] for w in firing),
        url=url,
        workflows=tuple(w.name for w in firing),
    )


def navigation(
    *,
    user: RequestUser,
    view_name: str | None,
    workflow_slug: str | None = None,
    sections: Sequence[Section] = SECTIONS,
    workflows: Sequence[WorkflowRights] | None = None,
    alert_counts: dict[str, int] | None = None,
) -> Navigation:
    """What the navigation bar shows to ``user`` on the page ``view_name``.

    ``workflow_slug``: the workflow the page belongs to, if any; the entries then lead to
    that workflow's pages. ``workflows`` and ``alert_counts`` (firing, unacknowledged
    alerts per workflow slug) may be given to save the queries (tests).
    """
    if not user.is_authenticated:
        return Navigation()
    if workflows is None:
        workflows = workflow_rights(user)
    context = next((w for w in workflows if w.slug == workflow_slug), None)
    current_key = current_section(view_name, sections)
    entries = []
    for section in sections:
        url = _section_url(section, context, workflows)
        if url is not None:
            entries.append(NavEntry(section.key, section.label, url, section.key == current_key))
    switch_to: list[NavEntry] = []
    if context is not None:
        current = next((s for s in sections if s.key == current_key), None)
        for other in workflows:
            if other.archived and other.slug != context.slug:
                continue
            url = _switch_url(other, current, sections)
            if url is not None:
                switch_to.append(NavEntry(other.slug, other.name, url, other.slug == context.slug))
    return Navigation(
        entries=tuple(entries),
        workflow=context,
        switch_to=tuple(switch_to),
        admin_url=reverse("admin:index") if is_admin_site_user(user) else None,
        current=current_key,
        alerts=alerts_badge(workflows, alert_counts),
    )
