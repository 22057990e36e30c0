"""Explicit hooks: what other apps want done when the review flow records something.

The review app sits below the apps that act on its labels (automation watches audited
accuracy), so it cannot import them. Instead they register a callable here when their
app is ready; the review services call every registered hook inside their transaction,
and a hook defers its real work to ``transaction.on_commit``.
"""

from __future__ import annotations

from typing import Protocol


class AuditLabelHook(Protocol):
    """Called with the workflow's id after a blind audit label is recorded."""

    def __call__(self, *, workflow_id: int) -> None: ...


_audit_label_hooks: list[AuditLabelHook] = []


def on_audit_label(hook: AuditLabelHook) -> AuditLabelHook:
    """Register ``hook`` (once) to run after every audit label. Usable as a decorator."""
    if hook not in _audit_label_hooks:
        _audit_label_hooks.append(hook)
    return hook


def audit_label_recorded(*, workflow_id: int) -> None:
    """Run the registered audit-label hooks. Call inside the verdict's transaction."""
    for hook in _audit_label_hooks:
        hook(workflow_id=workflow_id)
