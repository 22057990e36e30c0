"""Small formatting filters for the review pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``seconds`` as a short human duration: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    if seconds is None:
        return "—"
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def rate(value: float | None, decimals: int = 0) -> str:
    """A share in [0, 1] as a percentage ("87%"), or a dash when there is none."""
    if value is None:
        return "—"
    return f"{100.0 * value:.{int(decimals)}f}%"


@register.filter
def kappa(value: float | None) -> str:
    """Cohen's kappa with two decimals, or a dash when it is not defined."""
    if value is None:
        return "—"
    return f"{value:.2f}"
