"""The Django admin (superusers only) for workflows and their members.

Here, above the automation app, because a policy change made in the admin goes through
the one gated service (``automation.services.automation_update``) like every other path.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.types import AuthenticatedHttpRequest
from automation.forms import PolicyForm
from automation.services import POLICY_FIELDS, automation_update
from decisions.routing import Level
from kernel.errors import DomainError
from workflows.models import Workflow, WorkflowMembership

# The policy, and the confidence its evidence is judged at: read-only on the change form.
# So is the deadline fallback: it changes through processing.deadlines.workflow_fallback_set
# (PUT /api/v1/workflows/{slug}/fallback/), which checks it.
POLICY_READ_ONLY = (
    *POLICY_FIELDS,
    "evidence_confidence",
    "fallback_action",
    "fallback_label",
    "fallback_threshold",
)


class MembershipInline(admin.TabularInline):
    model = WorkflowMembership
    extra = 0


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "level", "confidence_threshold", "audit_rate"]
    inlines = [MembershipInline]
    readonly_fields = ["created_at", "automation_policy", *POLICY_READ_ONLY]

    @admin.display(description="Automation policy")
    def automation_policy(self, obj: Workflow) -> str:
        if obj.pk is None:
            return "A new workflow starts at human_only; change its policy once it is saved."
        return format_html(
            '<a href="{}">Change the automation policy</a> (through the evidence gate; logged)',
            reverse("admin:workflows_workflow_automation", args=[obj.pk]),
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/automation/",
                self.admin_site.admin_view(self.automation_view),
                name="workflows_workflow_automation",
            ),
            *super().get_urls(),
        ]

    def save_model(self, request: HttpRequest, obj: Workflow, form: Any, change: bool) -> None:
        """The policy is not on the form; a new workflow starts at ``human_only``."""
        if not change:
            obj.level = Level.HUMAN_ONLY.value
        super().save_model(request, obj, form, change)

    def automation_view(self, request: AuthenticatedHttpRequest, object_id: str) -> HttpResponse:
        """Change the policy with the automation page's form, through the one service."""
        workflow = self.get_object(request, unquote(object_id))
        if workflow is None:
            raise Http404("workflow not found")
        if not self.has_change_permission(request, workflow):
            raise PermissionDenied
        allow_override = bool(request.user.is_superuser)
        bound = request.method == "POST"
        form = PolicyForm(
            request.POST if bound else None, workflow=workflow, allow_override=allow_override
        )
        status = 200
        if bound:
            status = 400
            if form.is_valid():
                changes = form.changes()
                if not changes:
                    form.add_error(None, "Nothing changed: the policy already has these values.")
                else:
                    try:
                        change = automation_update(
                            workflow=workflow,
                            actor=request.user,
                            reason=form.cleaned_data["reason"],
                            changes=changes,
                            override=bool(form.cleaned_data.get("override")),
                        )
                    except DomainError as exc:
                        form.add_error(None, exc.message)
                        status = exc.status_code
                    else:
                        text = f"Automation policy saved: {', '.join(sorted(changes))} changed."
                        if change.overridden:
                            text += " The evidence gate was overridden; this is logged."
                        self.message_user(request, text)
                        return redirect("admin:workflows_workflow_change", workflow.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Automation policy of {workflow}",
            "opts": self.model._meta,
            "original": workflow,
            "form": form,
            "product_page": reverse("automation:page", args=[workflow.slug]),
        }
        return TemplateResponse(
            request, "admin/workflows/workflow/automation_policy.html", context, status=status
        )
