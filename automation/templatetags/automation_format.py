"""Formatting of rates and intervals on the automation page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: Any, decimals: int = 1) -> str:
    """0.9123 -> '91.2%'; None -> '—'."""
    if value is None or value == "":
        return "—"
    return f"{100.0 * float(value):.{int(decimals)}f}%"


@register.filter
def interval(value: Mapping[str, Any] | None) -> str:
    """An interval dict -> '91.2% (88.0 to 93.9%, n=412)'; nothing seen -> 'no labels'."""
    if not value or not value.get("n"):
        return "no labels"
    return (
        f"{pct(value['estimate'])} ({pct(value['low'])} to {pct(value['high'])}, "
        f"n={value['n']})"
    )


@register.filter
def get_item(mapping: Mapping[str, Any] | None, key: str) -> Any:
    return (mapping or {}).get(key)


@register.filter
def policy_value(value: Any) -> str:
    """A policy field's value for the audit log: class rules as 'ok 0.95, crack never'."""
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return ", ".join(
            f"{label} {'never' if rule is None else rule}" for label, rule in value.items()
        )
    if value is None:
        return "—"
    return str(value)
