"""The review queue in the Django admin (superusers only), read-only: tasks, leases and
verdicts change in ``review.services`` alone, which keep the case's state machine, the
one-open-lease and one-standing-verdict constraints and the event trail together."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from review.models import Assignment, ReviewTask, ReviewTaskEvent, Verdict


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "workflow", "case", "kind", "reason", "status", "created_at"]
    list_filter = ["workflow", "kind", "reason", "status"]


@admin.register(ReviewTaskEvent)
class ReviewTaskEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "task", "from_status", "to_status", "actor_type", "actor", "created_at"]
    list_filter = ["to_status", "actor_type"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "task", "reviewer", "state", "leased_at", "expires_at"]
    list_filter = ["state"]


@admin.register(Verdict)
class VerdictAdmin(ReadOnlyAdmin):
    list_display = ["id", "case", "reviewer", "label", "created_at", "retracted_at"]
