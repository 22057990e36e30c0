"""Every template of the project, as a reader of its rendered output would see it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(
    path
    for path in ROOT.glob("**/templates/**/*.html")
    if ".venv" not in path.parts and "node_modules" not in path.parts
)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_comment_spans_lines(path: Path) -> None:
    """Django's ``{# #}`` comment is single-line: one that spans lines renders as text."""
    source = path.read_text()
    unclosed = [
        number
        for number, line in enumerate(source.splitlines(), start=1)
        if re.search(r"\{#(?!.*#\})", line)
    ]
    assert not unclosed, f"{path.name}: a {{# comment opened on line(s) {unclosed} spans lines"


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) > 5
