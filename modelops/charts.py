"""Small server-side SVG charts for the comparison page: a confusion matrix and a
reliability diagram. Plain strings, every text escaped; no JavaScript, no chart library."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from decisions.stats import ReliabilityBin

_FONT = 'font-family="system-ui, sans-serif"'


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _blue(share: float) -> str:
    """White (0) to a strong blue (1)."""
    share = min(max(share, 0.0), 1.0)
    red = round(255 - share * (255 - 35))
    green = round(255 - share * (255 - 87))
    blue = round(255 - share * (255 - 217))
    return f"rgb({red},{green},{blue})"


def confusion_svg(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> str:
    """Rows are the human labels, columns the model's; cells shaded by the row share."""
    cell = 54
    left, top = 96, 70
    size = cell * len(labels)
    width, height = left + size + 16, top + size + 16
    body = [
        f'<text x="{left + size / 2}" y="18" text-anchor="middle" font-size="13" '
        f'font-weight="600" {_FONT}>{escape(title)}</text>',
        f'<text x="{left + size / 2}" y="36" text-anchor="middle" font-size="11" '
        f'fill="#5c6475" {_FONT}>predicted</text>',
        f'<text x="14" y="{top + size / 2}" font-size="11" fill="#5c6475" {_FONT} '
        f'transform="rotate(-90 14 {top + size / 2})" text-anchor="middle">human label</text>',
    ]
    for j, label in enumerate(labels):
        body.append(
            f'<text x="{left + j * cell + cell / 2}" y="{top - 8}" text-anchor="middle" '
            f'font-size="11" {_FONT}>{escape(label[:9])}</text>'
        )
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        total = sum(row)
        y = top + i * cell
        body.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end" font-size="11" '
            f"{_FONT}>{escape(label[:12])}</text>"
        )
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            x = left + j * cell
            ink = "#fff" if share > 0.55 else "#1d2330"
            outline = ' stroke="#1f7a3a" stroke-width="2"' if i == j else ' stroke="#dde1e8"'
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_blue(share)}"'
                f"{outline}><title>human {escape(label)}, predicted {escape(labels[j])}: "
                f"{count}</title></rect>"
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                f'font-size="12" fill="{ink}" {_FONT}>{count}</text>'
            )
    return _svg(width, height, title, body)


def reliability_svg(series: Sequence[tuple[str, Sequence[ReliabilityBin], str]], title: str) -> str:
    """Accuracy against mean confidence per bin, one line per (name, bins, colour); the
    diagonal is perfect calibration. Empty bins are skipped."""
    width, height = 320, 300
    left, top, plot = 46, 30, 220

    def point(x: float, y: float) -> tuple[float, float]:
        return left + x * plot, top + (1.0 - y) * plot

    body = [
        f'<text x="{left + plot / 2}" y="18" text-anchor="middle" font-size="13" '
        f'font-weight="600" {_FONT}>{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="#fff" stroke="#dde1e8"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = point(tick, tick)
        body.append(
            f'<line x1="{left}" y1="{y}" x2="{left + plot}" y2="{y}" stroke="#eef1f6"/>'
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="10" '
            f"{_FONT}>{tick:.2f}</text>"
            f'<text x="{x}" y="{top + plot + 14}" text-anchor="middle" font-size="10" '
            f"{_FONT}>{tick:.2f}</text>"
        )
    x0, y0 = point(0, 0)
    x1, y1 = point(1, 1)
    body.append(
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#9aa3b5" '
        'stroke-dasharray="4 4"><title>perfect calibration</title></line>'
        f'<text x="{left + plot / 2}" y="{top + plot + 30}" text-anchor="middle" '
        f'font-size="11" fill="#5c6475" {_FONT}>confidence</text>'
        f'<text x="12" y="{top + plot / 2}" font-size="11" fill="#5c6475" {_FONT} '
        f'transform="rotate(-90 12 {top + plot / 2})" text-anchor="middle">accuracy</text>'
    )
    for index, (name, bins, colour) in enumerate(series):
        points = [point(b.mean_confidence, b.accuracy) for b in bins if b.count]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for b in bins:
            if not b.count:
                continue
            x, y = point(b.mean_confidence, b.accuracy)
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{min(3 + b.count**0.5 / 2, 8):.1f}" '
                f'fill="{colour}" fill-opacity="0.75"><title>{escape(name)}: confidence '
                f"{b.low:.1f}-{b.high:.1f}, {b.count} cases, accuracy {b.accuracy:.2f}"
                "</title></circle>"
            )
        legend_y = top + 14 + index * 16
        body.append(
            f'<rect x="{left + 8}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 22}" y="{legend_y}" font-size="11" {_FONT}>'
            f"{escape(name)}</text>"
        )
    return _svg(width, height, title, body)
