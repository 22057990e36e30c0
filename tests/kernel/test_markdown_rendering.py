"""Workflow instructions: Markdown in, only safe HTML out."""

from kernel.markdown import markdown_html


def test_blank_text_is_empty():
    assert markdown_html("") == "" and markdown_html("  \n") == ""


def test_markup_survives_and_scripts_do_not():
    html = markdown_html(
        "# Rules\n\n**crack**: a line <script>alert(1)</script>"
        '\n\n<img src=x onerror="alert(1)">\n\n[ok](https://example.org/a)'
        "\n\n[bad](javascript:alert(1))"
    )
    assert "<h1>Rules</h1>" in html and "<strong>crack</strong>" in html
    assert "<script" not in html
    assert "<img" not in html  # raw HTML is text, never markup
    assert 'href="https://example.org/a"' in html
    assert 'rel="noopener noreferrer' in html  # (and nofollow: an admin's link is no endorsement)
    assert 'href="javascript' not in html


def test_markdown_images_keep_only_safe_attributes():
    html = markdown_html('![a crack](https://example.org/c.png "example")')
    assert '<img src="https://example.org/c.png" alt="a crack" title="example">' in html
