"""Markdown written by workflow admins (instructions), as HTML that is safe to show.

Admins write it and every reviewer of the workflow reads it, so it is untrusted input:
``markdown-it-py`` renders CommonMark (raw HTML in the source is escaped, not passed
through), and ``nh3`` (the Ammonia sanitiser) keeps only the tags and attributes below,
whatever the renderer produced. Links may only go to http(s) and mailto, and open
without the opener or referrer.
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "a",
        "blockquote",
        "br",
        "code",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "strong",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
        "s",
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
MAX_MARKDOWN_CHARS = 20_000

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_renderer.enable("strikethrough")


def markdown_html(text: str) -> SafeString:
    """``text`` (Markdown) as sanitised HTML, ready for a template."""
    if not text.strip():
        return mark_safe("")
    rendered = _renderer.render(text[:MAX_MARKDOWN_CHARS])
    clean = nh3.clean(
        rendered,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
