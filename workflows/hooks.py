"""Explicit hooks: what higher apps want done when a case moves.

The workflows app is below the apps that act on a case's moves (integrations pushes
``case.decided`` and ``case.in_review`` to webhooks), so it cannot import them. They
register a callable here when their app is ready; ``case_transition`` and
``cases_transition`` call every registered hook inside their transaction, after the
move and its event row are handed to the database, so whatever a hook writes commits or
rolls back with the move. Inside a ``kernel.joinedwrites`` block (a verdict, D140) those
rows are sent when the block ends: a hook works from the cases it is given, as every
hook here does, and reads nothing back from the database during the move.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from workflows.models import Case


class CaseMovedHook(Protocol):
    """Called with the cases that moved (same workflow or not) and their new status."""

    def __call__(
        self, *, cases: Sequence[Case], from_statuses: Sequence[str], to_status: str
    ) -> None: ...


_case_moved_hooks: list[CaseMovedHook] = []


def on_case_moved(hook: CaseMovedHook) -> CaseMovedHook:
    """Register ``hook`` (once) to run after every case move. Usable as a decorator."""
    if hook not in _case_moved_hooks:
        _case_moved_hooks.append(hook)
    return hook


def cases_moved(*, cases: Sequence[Case], from_statuses: Sequence[str], to_status: str) -> None:
    """Run the registered hooks. Call inside the move's transaction."""
    for hook in _case_moved_hooks:
        hook(cases=cases, from_statuses=from_statuses, to_status=to_status)
