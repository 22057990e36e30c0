"""Forget cached workflows and memberships when they change (``kernel.readcache``, D125).

Receivers on the models, so that every writer (services, the Django admin, management
commands) invalidates: archiving a workflow, changing its level or settings, adding,
changing or removing a member. A user's token and account are ``accounts.invalidation``'s.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from kernel.readcache import invalidate
from workflows.access import membership_cache_key, workflow_cache_key, workflow_id_cache_key
from workflows.models import Workflow, WorkflowMembership


def _workflow_changed(sender: Any, instance: Workflow, created: bool = False, **_: Any) -> None:
    invalidate(
        [workflow_cache_key(instance.slug), workflow_id_cache_key(instance.pk)], created=created
    )


def _membership_changed(
    sender: Any, instance: WorkflowMembership, created: bool = False, **_: Any
) -> None:
    invalidate([membership_cache_key(instance.workflow_id, instance.user_id)], created=created)


def connect() -> None:
    post_save.connect(_workflow_changed, sender=Workflow, dispatch_uid="access-cache-wf-save")
    post_delete.connect(_workflow_changed, sender=Workflow, dispatch_uid="access-cache-wf-del")
    post_save.connect(
        _membership_changed, sender=WorkflowMembership, dispatch_uid="access-cache-member-save"
    )
    post_delete.connect(
        _membership_changed, sender=WorkflowMembership, dispatch_uid="access-cache-member-del"
    )
