from django.contrib import admin

from review.models import Assignment, ReviewTask, Verdict


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "workflow", "case", "kind", "reason", "status", "created_at"]
    list_filter = ["workflow", "kind", "reason", "status"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "reviewer", "state", "leased_at", "expires_at"]
    list_filter = ["state"]


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    list_display = ["id", "case", "reviewer", "label", "created_at", "retracted_at"]
