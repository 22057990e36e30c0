"""The Django admin (superusers only) for workflows and their members.

Here, above the automation app, because a policy change made in the admin goes through
the one gated service (``automation.services.automation_update``) like every other path,
and its settings through ``workspace.services`` like the API and the settings pages.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.types import AuthenticatedHttpRequest
from automation.forms import PolicyForm
from automation.services import POLICY_FIELDS, automation_update
from kernel.errors import DomainError
from workflows.models import LabelExample, Workflow, WorkflowMembership
from workspace.services import (
    REVIEW_SETTINGS,
    UPDATE_FIELDS,
    label_example_add,
    label_example_remove,
    label_example_upload_read,
    workflow_create,
    workflow_update,
)

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
    """Members, read-only here: they change on the workflow's Members page, through the
    same services as the API (the last admin is kept, new people get a one-time link)."""

    model = WorkflowMembership
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("user", "can_submit", "can_review", "can_admin")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class WorkflowAdminForm(forms.ModelForm):
    """The settings fields, checked by the workspace services (a dry run: the write is
    ``save_model``'s, once the whole page is valid)."""

    class Meta:
        model = Workflow
        fields = [
            "slug",
            "name",
            "description",
            "instructions",
            "labels",
            "label_settings",
            *REVIEW_SETTINGS,
            "training_augmentation",
        ]
        help_texts = {
            "training_augmentation": 'Retraining\'s default, e.g. {"hflip": false, "vflip": '
            'false, "rotation": 0, "brightness": 0.1, "contrast": 0.1, "colour": 0, "crop": 0}; '
            "empty: the platform's orientation-safe default. Checked like the API's.",
        }

    request_user: Any = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            with transaction.atomic():
                _service_apply(self.instance, data, self.request_user, self.changed_data)
                transaction.set_rollback(True)
        except DomainError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return data


def _service_apply(
    instance: Workflow, data: dict[str, Any], actor: Any, changed: list[str]
) -> Workflow:
    settings = {name: data[name] for name in REVIEW_SETTINGS if name in data}
    if instance.pk is None:
        return workflow_create(
            creator=actor,
            slug=data.get("slug", ""),
            name=data.get("name", ""),
            labels=data.get("labels") or [],
            description=data.get("description", ""),
            instructions=data.get("instructions", ""),
            label_settings=data.get("label_settings") or {},
            training_augmentation=data.get("training_augmentation"),
            **settings,
        )
    current = Workflow.objects.get(pk=instance.pk)
    changes = {name: data[name] for name in UPDATE_FIELDS if name in changed and name in data}
    if "slug" in changed and data.get("slug") != current.slug:
        changes["slug"] = data.get("slug")
    return workflow_update(workflow=current, actor=actor, changes=changes)


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowAdminForm
    list_display = ["slug", "name", "level", "confidence_threshold", "audit_rate", "archived_at"]
    inlines = [MembershipInline]
    readonly_fields = ["created_at", "archived_at", "automation_policy", *POLICY_READ_ONLY]

    @admin.display(description="Automation policy")
    def automation_policy(self, obj: Workflow) -> str:
        if obj.pk is None:
            return "A new workflow starts at human_only; change its policy once it is saved."
        return format_html(
            '<a href="{}">Change the automation policy</a> (through the evidence gate; logged). '
            '<a href="{}">Members, tokens and archiving</a> are on the workflow\'s settings pages.',
            reverse("admin:workflows_workflow_automation", args=[obj.pk]),
            reverse("workspace:settings", args=[obj.slug]),
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form):  # type: ignore[valid-type,misc]
            request_user = request.user

        return RequestForm

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "slug"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Workflow, form: Any, change: bool) -> None:
        """Through the workspace services: a new workflow starts at ``human_only`` with
        the superuser as its admin; a change never touches the policy."""
        saved = _service_apply(
            obj if change else Workflow(), form.cleaned_data, request.user, form.changed_data
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # archive instead: labelled data is never deleted

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/automation/",
                self.admin_site.admin_view(self.automation_view),
                name="workflows_workflow_automation",
            ),
            *super().get_urls(),
        ]

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


class LabelExampleAdminForm(forms.ModelForm):
    """An example image, stored by ``workspace.services.label_example_add`` when the form
    is cleaned (inside the admin's transaction), so its checks and messages are the API's."""

    image = forms.FileField(help_text="PNG, JPEG, WebP, BMP or TIFF.")

    class Meta:
        model = LabelExample
        fields = ["workflow", "label", "caption"]

    request_user: Any = None
    stored: LabelExample | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.stored = label_example_add(
                workflow=data["workflow"],
                actor=self.request_user,
                label=data.get("label", ""),
                caption=data.get("caption", ""),
                image_data=label_example_upload_read(data.get("image")),
            )
        except DomainError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return data


@admin.register(LabelExample)
class LabelExampleAdmin(admin.ModelAdmin):
    """Example images of the labels: added and removed through the workspace services
    (the same checks as the API and the settings page); never edited in place."""

    form = LabelExampleAdminForm
    list_display = ["workflow", "label", "caption", "image_width", "image_height", "created_at"]
    list_filter = ["workflow"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form):  # type: ignore[valid-type,misc]
            request_user = request.user

        return RequestForm

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: LabelExample, form: Any, change: bool) -> None:
        stored = form.stored
        obj.pk = stored.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: LabelExample) -> None:
        # The admin site lets only signed-in superusers this far.
        actor: Any = request.user
        label_example_remove(workflow=obj.workflow, actor=actor, example_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for example in queryset.select_related("workflow"):
            self.delete_model(request, example)
