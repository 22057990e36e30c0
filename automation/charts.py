"""Geometry of the automation-rate-versus-error chart, drawn as inline SVG by the page.

Pure: plain numbers in, plain numbers and path strings out (the template escapes text).
The x axis is the automation rate (share of cases the model would decide at a
threshold), the y axis the error among those cases: observed, and its exact one-sided
upper bound at the calibration's confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from automation.presenters import CurvePointView, RecommendationView

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 44


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    threshold: float
    automation_rate: float
    error_rate: float
    label: str

    @property
    def diamond(self) -> str:
        """A diamond of radius 7 around the point, as an SVG path."""
        x, y, r = self.x, self.y, 7
        return f"M{x},{y - r} L{x + r},{y} L{x},{y + r} L{x - r},{y} Z"


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    observed_path: str
    bound_path: str
    target_y: float | None
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    current: Marker | None
    recommended: Marker | None
    y_max: float


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (at most 1.0)."""
    if value >= 1.0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10**exponent
        if candidate >= value - 1e-12:
            return min(candidate, 1.0)
    return 1.0


def _percent(value: float) -> str:
    shown = f"{100 * value:.1f}".rstrip("0").rstrip(".")
    return f"{shown}%"


def risk_coverage_chart(
    curve: Sequence[CurvePointView],
    *,
    target_error: float,
    current: CurvePointView | None,
    recommended: RecommendationView | None,
) -> Chart | None:
    """The chart for ``curve`` (points of ``presenters.threshold_report_view``), or None if empty.

    ``current`` is the curve point at the threshold in force; ``recommended`` holds
    ``threshold``, ``expected_automation_rate`` and ``error_rate`` of the calibrated one.
    Values above the top of the chart are drawn at the top.
    """
    points = sorted(
        (p for p in curve if p["n_auto"] > 0), key=lambda p: (p["automation_rate"], -p["threshold"])
    )
    if not points:
        return None
    worst_seen = max(p["error_rate"] for p in points)
    y_max = _nice_ceiling(max(3 * target_error, 1.25 * worst_seen, 0.01))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x_of(rate: float) -> float:
        return round(LEFT + plot_w * min(max(rate, 0.0), 1.0), 2)

    def y_of(error: float) -> float:
        return round(TOP + plot_h * (1.0 - min(max(error, 0.0), y_max) / y_max), 2)

    def path(key: Literal["error_rate", "error_upper_bound"]) -> str:
        return " ".join(
            f"{'M' if i == 0 else 'L'}{x_of(p['automation_rate'])},{y_of(p[key])}"
            for i, p in enumerate(points)
        )

    x_ticks = tuple(Tick(x_of(k / 5), _percent(k / 5)) for k in range(6))
    y_ticks = tuple(Tick(y_of(y_max * k / 4), _percent(y_max * k / 4)) for k in range(5))
    current_marker = None
    if current is not None and current.get("n_auto"):
        current_marker = Marker(
            x=x_of(current["automation_rate"]),
            y=y_of(current["error_rate"]),
            threshold=current["threshold"],
            automation_rate=current["automation_rate"],
            error_rate=current["error_rate"],
            label="current threshold",
        )
    recommended_marker = None
    if recommended is not None and (threshold := recommended["threshold"]) is not None:
        recommended_marker = Marker(
            x=x_of(recommended["expected_automation_rate"]),
            y=y_of(recommended["error_rate"]),
            threshold=threshold,
            automation_rate=recommended["expected_automation_rate"],
            error_rate=recommended["error_rate"],
            label="recommended threshold",
        )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=HEIGHT - BOTTOM,
        observed_path=path("error_rate"),
        bound_path=path("error_upper_bound"),
        target_y=y_of(target_error) if target_error <= y_max else None,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        current=current_marker,
        recommended=recommended_marker,
        y_max=y_max,
    )
