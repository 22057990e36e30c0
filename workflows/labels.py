"""Label keys and colours: one shortcut per label that never collides with a screen key.

Pure: no Django. The review screen, the settings pages and the settings API all read a
workflow's keys from ``label_keys``, and the settings service validates an admin's
choices with ``key_problem``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Keys the review screen keeps for itself. Letters: S skip, U undo, H saliency, F fit the
# image, N note (comment), I instructions. Punctuation: ? help, + = - _ zoom, [ ] saliency
# opacity. Arrows, Escape, Enter and Space are never label keys either.
SCREEN_KEYS = frozenset({"s", "u", "h", "f", "n", "i", "?", "+", "=", "-", "_", "[", "]", " "})
# Letters a default never uses because they read like a digit on a key cap (O/0, L/1).
CONFUSABLE = frozenset({"o", "l"})

PALETTE = (
    "#1b5e20",
    "#b71c1c",
    "#0d47a1",
    "#e65100",
    "#4a148c",
    "#006064",
    "#827717",
    "#880e4f",
    "#3e2723",
    "#263238",
)


@dataclass(frozen=True)
class LabelKey:
    label: str
    keys: tuple[str, ...]
    color: str

    @property
    def primary(self) -> str | None:
        return self.keys[0] if self.keys else None


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a label key, or None when it can."""
    if len(key) != 1 or not key.isprintable():
        return "a label key is one printable character"
    if key != key.lower():
        return "label keys are lower case (the screen ignores Shift)"
    if key in SCREEN_KEYS:
        return f"{key!r} is a review screen key"
    return None


def label_keys(labels: Sequence[str], settings: Mapping[str, Any] | None = None) -> list[LabelKey]:
    """Each label's keys, in label order.

    An admin's key (``settings[label]["key"]``) comes first. Otherwise a label that is a
    single digit or free letter gets that character (labels ``0``…``9`` get their own
    digit); every other label gets the next free digit 1-9, then 0, and its first free
    letter that is not a screen key or confusable with a digit. No key is given twice.
    """
    settings = settings or {}
    taken: set[str] = set()
    chosen: dict[str, list[str]] = {label: [] for label in labels}

    def take(label: str, key: str) -> None:
        taken.add(key)
        chosen[label].append(key)

    for label in labels:
        key = str((settings.get(label) or {}).get("key") or "")
        if key and key_problem(key) is None and key not in taken:
            take(label, key)
    for label in labels:
        if chosen[label]:
            continue
        own = label.lower()
        if len(own) == 1 and key_problem(own) is None and own not in taken:
            take(label, own)
    digits = [str(d) for d in range(1, 10)] + ["0"]
    for label in labels:
        if chosen[label]:
            continue
        free = next((d for d in digits if d not in taken), None)
        if free is not None:
            take(label, free)
    for label in labels:
        if len(label) == 1 or (settings.get(label) or {}).get("key"):
            continue
        for char in label.lower():
            if (
                char.isalpha()
                and char not in taken
                and char not in CONFUSABLE
                and key_problem(char) is None
            ):
                take(label, char)
                break
    return [
        LabelKey(
            label=label,
            keys=tuple(chosen[label]),
            color=str((settings.get(label) or {}).get("color") or PALETTE[i % len(PALETTE)]),
        )
        for i, label in enumerate(labels)
    ]
