"""Instructions are Markdown from admins, shown to every reviewer: only safe HTML comes out."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from kernel.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, markdown_html

ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=https://example.com></iframe>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<svg onload=alert(1)>",
    "<<script>script>alert(1)<</script>/script>",
    '[x](https://example.com "t" onmouseover="alert(1)")',
]


class Elements(HTMLParser):
    """Every element and attribute of an HTML text (escaped text is text, not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("source", ATTACKS)
def test_no_script_gets_through(source: str) -> None:
    for tag, attrs in elements(str(markdown_html(source))):
        assert tag in ALLOWED_TAGS, (source, tag)
        for name, value in attrs:
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) | {"rel"}, (source, tag, name)
            if name == "href":
                assert (value or "").split(":")[0].lower() in ("http", "https", "mailto"), value


def test_markdown_is_rendered() -> None:
    html = str(
        markdown_html(
            "# Look\n\nPress **1** for *ok*, see [the guide](https://example.com/g).\n\n"
            "- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        )
    )
    assert "<h1>Look</h1>" in html
    assert "<strong>1</strong>" in html and "<em>ok</em>" in html
    assert '<a href="https://example.com/g" rel="noopener noreferrer nofollow">' in html
    assert "<li>one</li>" in html and "<table>" in html


def test_blank_is_empty_and_the_result_is_marked_safe() -> None:
    assert markdown_html("  \n") == ""
    assert hasattr(markdown_html("x"), "__html__")
