"""Workflow text in Markdown, made safe to put in a page.

Markdown is rendered by markdown-it-py with raw HTML off (CommonMark), then cleaned by
nh3 (an allow-list sanitiser): only ordinary text markup and links survive, every
attribute but a link's ``href`` and an image's ``src``/``alt`` is dropped, and links
get ``rel="noopener noreferrer"``. No Django, so any layer may use it.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
        "h1", "h2", "h3", "h4", "h5", "h6", "a", "img", "table", "thead", "tbody", "tr",
        "th", "td", "del", "s",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown_html(text: str) -> str:
    """``text`` (Markdown, untrusted) as sanitised HTML; empty for blank text."""
    if not (text or "").strip():
        return ""
    return nh3.clean(
        _renderer.render(text),
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
    )
