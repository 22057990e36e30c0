"""``{% main_nav %}``: the navigation bar, rendered once by templates/base.html."""

from __future__ import annotations

from typing import Any

from django import template

from loopgate.navigation import navigation

register = template.Library()


@register.inclusion_tag("loopgate/nav.html", takes_context=True)
def main_nav(context: template.Context) -> dict[str, Any]:
    """The bar for the page being rendered.

    The page belongs to a workflow when its context has one (``workflow``, a Workflow or
    anything with a ``slug``); the view's URL name marks the current section.
    """
    request = context.get("request")
    user = context.get("user") or getattr(request, "user", None)
    if request is None or user is None:
        return {"nav": None}
    match = getattr(request, "resolver_match", None)
    workflow = context.get("workflow")
    return {
        "nav": navigation(
            user=user,
            view_name=match.view_name if match is not None else None,
            workflow_slug=getattr(workflow, "slug", None),
        ),
        "path": request.path,
    }
