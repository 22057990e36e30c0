"""Pages where workflow admins run their workflows: a new workflow and its settings.

Session login and CSRF. Every form calls the same service as the API
(``workspace.services``), after the same access check (``workflows.access``): another
workflow's admin gets 404, a reviewer 403. A refusal is shown on the form with the
service's message and status.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_http_methods

from accounts.types import AuthenticatedHttpRequest
from kernel.errors import DomainError, Forbidden, NotFound
from kernel.markdown import markdown_html
from modelops.retraining import (
    TrainingRequest,
    training_augmentation,
    workflow_augmentation_summary,
)
from workflows.access import access_workflow
from workflows.labels import PALETTE, label_keys
from workflows.models import Workflow
from workflows.selectors import label_examples
from workspace.forms import (
    SETTING_LABELS,
    AddLabelsForm,
    ArchiveForm,
    GeneralForm,
    InviteForm,
    LabelExampleForm,
    RemoveForm,
    ReviewSettingsForm,
    RoleForm,
    TokenCreateForm,
    TokenRevokeForm,
    TrainingAugmentationForm,
    WorkflowCreateForm,
    labels_from_text,
)
from workspace.selectors import members_of, workflow_tokens
from workspace.services import (
    LABEL_EXAMPLES_PER_LABEL,
    REVIEW_SETTINGS,
    can_create_workflows,
    label_example_add,
    label_example_remove,
    label_example_upload_read,
    membership_add,
    membership_link_renew,
    membership_remove,
    membership_role_set,
    role_of,
    token_expiry,
    workflow_archive,
    workflow_create,
    workflow_token_create,
    workflow_token_revoke,
    workflow_unarchive,
    workflow_update,
)

SECTIONS = (
    ("general", "General", "workspace:settings"),
    ("labels", "Labels and hotkeys", "workspace:settings-labels"),
    ("review", "Review", "workspace:settings-review"),
    ("members", "Members", "workspace:settings-members"),
    ("tokens", "API tokens", "workspace:settings-tokens"),
    ("training", "Training", "workspace:settings-training"),
)


def _admin_workflow(request: HttpRequest, slug: str) -> Workflow:
    try:
        return access_workflow(request.user, slug, "can_admin")
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


def _refused(form: forms.Form, exc: DomainError) -> int:
    """Show a service's refusal on the form; the status to render the page with."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)
    return exc.status_code


def _render(
    request: HttpRequest,
    workflow: Workflow,
    section: str,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    nav = [
        {"key": key, "title": title, "url": reverse(name, args=[workflow.slug])}
        for key, title, name in SECTIONS
    ]
    title = next(title for key, title, _ in SECTIONS if key == section)
    base = {"workflow": workflow, "section": section, "sections": nav, "section_title": title}
    return render(request, f"workspace/settings_{section}.html", {**base, **context}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def workflow_create_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not can_create_workflows(request.user):
        raise PermissionDenied("you may not create workflows")
    form = WorkflowCreateForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                workflow = workflow_create(creator=request.user, **form.service_arguments())
            except DomainError as exc:
                status = _refused(form, exc)
            else:
                messages.success(
                    request,
                    f"Workflow {workflow.name} created at human only. Next: add your "
                    "reviewers and an API token for the system that sends the cases.",
                )
                return redirect("workspace:settings-members", workflow.slug)
    return render(request, "workspace/create.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def settings_general(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    action = request.POST.get("action") if request.method == "POST" else None
    initial = {
        "name": workflow.name,
        "description": workflow.description,
        "instructions": workflow.instructions,
    }
    form = GeneralForm(request.POST if action == "save" else None, initial=initial)
    archive_form = ArchiveForm(request.POST if action in ("archive", "unarchive") else None)
    status = 200
    if action == "save":
        status = 400
        if form.is_valid():
            try:
                workflow_update(workflow=workflow, actor=request.user, changes=form.cleaned_data)
            except DomainError as exc:
                status = _refused(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("workspace:settings", workflow.slug)
    elif action in ("archive", "unarchive"):
        status = 400
        if archive_form.is_valid():
            if archive_form.cleaned_data["confirm_slug"].strip() != workflow.slug:
                archive_form.add_error("confirm_slug", f"Type {workflow.slug} to confirm.")
            else:
                if action == "archive":
                    workflow_archive(workflow=workflow, actor=request.user)
                    messages.success(request, "Archived: the workflow takes no new cases.")
                else:
                    workflow_unarchive(workflow=workflow, actor=request.user)
                    messages.success(request, "Unarchived: the workflow takes cases again.")
                return redirect("workspace:settings", workflow.slug)
    elif action is not None:
        messages.error(request, "Unknown action.")
        status = 400
    preview = markdown_html(
        form.data.get("instructions", "") if form.is_bound else workflow.instructions
    )
    context = {"form": form, "archive_form": archive_form, "instructions_html": preview}
    return _render(request, workflow, "general", context, status)


def _label_rows(workflow: Workflow, data: Any = None) -> list[dict[str, Any]]:
    defaults = {entry.label: entry for entry in label_keys(workflow.labels)}
    effective = {
        entry.label: entry for entry in label_keys(workflow.labels, workflow.label_settings)
    }
    rows = []
    for index, label in enumerate(workflow.labels):
        own = workflow.label_settings.get(label) or {}
        rows.append(
            {
                "index": index,
                "label": label,
                "key": data.get(f"key-{index}", "") if data is not None else own.get("key", ""),
                "color": (
                    data.get(f"color-{index}", "") if data is not None else effective[label].color
                ),
                "default_key": defaults[label].primary or "",
                "default_color": PALETTE[index % len(PALETTE)],
                "keys": effective[label].keys,
                "effective_color": effective[label].color,
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def settings_labels(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    action = request.POST.get("action") if request.method == "POST" else None
    add_form = AddLabelsForm(request.POST if action == "add" else None)
    example_form = LabelExampleForm(
        request.POST if action == "example-add" else None,
        request.FILES if action == "example-add" else None,
        labels=list(workflow.labels),
    )
    errors: list[str] = []
    status = 200
    if action == "keys":
        status = 400
        settings: dict[str, dict[str, str]] = {}
        for index, label in enumerate(workflow.labels):
            entry: dict[str, str] = {}
            key = request.POST.get(f"key-{index}", "").strip().lower()
            color = request.POST.get(f"color-{index}", "").strip().lower()
            if key:
                entry["key"] = key
            # A colour left at its default is not stored, so the default can change.
            if color and color != PALETTE[index % len(PALETTE)]:
                entry["color"] = color
            if entry:
                settings[label] = entry
        try:
            workflow_update(
                workflow=workflow, actor=request.user, changes={"label_settings": settings}
            )
        except DomainError as exc:
            errors.append(exc.message)
            status = exc.status_code
        else:
            messages.success(request, "Label keys and colours saved.")
            return redirect("workspace:settings-labels", workflow.slug)
    elif action == "add":
        status = 400
        if add_form.is_valid():
            new = labels_from_text(add_form.cleaned_data["new_labels"])
            try:
                workflow_update(
                    workflow=workflow,
                    actor=request.user,
                    changes={"labels": [*workflow.labels, *new]},
                )
            except DomainError as exc:
                status = _refused(add_form, exc)
            else:
                messages.success(request, f"Added {len(new)} label(s): {', '.join(new)}.")
                return redirect("workspace:settings-labels", workflow.slug)
    elif action == "example-add":
        status = 400
        if example_form.is_valid():
            data = example_form.cleaned_data
            try:
                label_example_add(
                    workflow=workflow,
                    actor=request.user,
                    label=data["label"],
                    caption=data["caption"],
                    image_data=label_example_upload_read(data["image"]),
                )
            except DomainError as exc:
                status = _refused(example_form, exc)
            else:
                messages.success(request, f"Example of {data['label']} added.")
                return redirect("workspace:settings-labels", workflow.slug)
    elif action == "example-remove":
        status = 400
        try:
            example_id = int(request.POST.get("example_id", ""))
            label_example_remove(workflow=workflow, actor=request.user, example_id=example_id)
        except ValueError:
            errors.append("Choose an example to remove.")
        except DomainError as exc:
            errors.append(exc.message)
            status = exc.status_code
        else:
            messages.success(request, "Example removed.")
            return redirect("workspace:settings-labels", workflow.slug)
    elif action is not None:
        messages.error(request, "Unknown action.")
        status = 400
    rows = _label_rows(workflow, request.POST if action == "keys" else None)
    examples = label_examples(workflow=workflow)
    for row in rows:
        row["examples"] = examples.get(row["label"], [])
    context = {
        "rows": rows,
        "add_form": add_form,
        "example_form": example_form,
        "errors": errors,
        "examples_max": LABEL_EXAMPLES_PER_LABEL,
    }
    return _render(request, workflow, "labels", context, status)


@login_required
@require_http_methods(["GET", "POST"])
def settings_review(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    initial = {name: getattr(workflow, name) for name in REVIEW_SETTINGS}
    form = ReviewSettingsForm(request.POST if request.method == "POST" else None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                workflow_update(workflow=workflow, actor=request.user, changes=form.cleaned_data)
            except DomainError as exc:
                status = _refused(form, exc)
            else:
                messages.success(request, "Review settings saved.")
                return redirect("workspace:settings-review", workflow.slug)
    return _render(request, workflow, "review", {"form": form, "labels": SETTING_LABELS}, status)


@login_required
@require_http_methods(["GET", "POST"])
def settings_training(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """The workflow's default training augmentation: the training form starts from it, and
    a run that names none uses it. Saved through ``workflow_update`` like the API's."""
    workflow = _admin_workflow(request, slug)
    action = request.POST.get("action") if request.method == "POST" else None
    effective = training_augmentation(workflow=workflow, request=TrainingRequest()).as_dict()
    form = TrainingAugmentationForm(request.POST if action == "save" else None, initial=effective)
    status = 200
    if action in ("save", "reset"):
        status = 400
        if action == "reset" or form.is_valid():
            value = form.augmentation() if action == "save" else {}
            try:
                workflow_update(
                    workflow=workflow,
                    actor=request.user,
                    changes={"training_augmentation": value},
                )
            except DomainError as exc:
                status = _augmentation_refused(form, exc)
            else:
                messages.success(
                    request,
                    "Training augmentation saved: " + workflow_augmentation_summary(workflow) + ".",
                )
                return redirect("workspace:settings-training", workflow.slug)
    elif action is not None:
        messages.error(request, "Unknown action.")
        status = 400
    context = {
        "form": form,
        "summary": workflow_augmentation_summary(workflow),
        "is_platform_default": not workflow.training_augmentation,
    }
    return _render(request, workflow, "training", context, status)


def _augmentation_refused(form: forms.Form, exc: DomainError) -> int:
    """A refusal such as "training_augmentation.rotation: ..." shown on that input."""
    setting = exc.message.split(":", 1)[0].rpartition(".")[2]
    form.add_error(setting if setting in form.fields else None, exc.message)
    return exc.status_code


@login_required
@require_http_methods(["GET", "POST"])
def settings_members(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    action = request.POST.get("action") if request.method == "POST" else None
    invite_form = InviteForm(request.POST if action == "invite" else None)
    row_error = ""
    invited: dict[str, Any] | None = None
    status = 200
    if action == "invite":
        status = 400
        if invite_form.is_valid():
            try:
                invitation = membership_add(
                    workflow=workflow,
                    actor=request.user,
                    site_url=request.build_absolute_uri("/").rstrip("/"),
                    **invite_form.cleaned_data,
                )
            except DomainError as exc:
                status = _refused(invite_form, exc)
            else:
                path = invitation.set_password_path
                invited = {
                    "username": invitation.membership.user.username,
                    "role": role_of(invitation.membership),
                    "link": request.build_absolute_uri(path) if path else None,
                    "emailed": invitation.emailed,
                }
                invite_form = InviteForm()
                status = 201 if invitation.created_account else 200
                if not path:
                    messages.success(request, f"{invited['username']} added as {invited['role']}.")
                    return redirect("workspace:settings-members", workflow.slug)
    elif action == "link":
        status = 400
        link_form = RemoveForm(request.POST)
        if link_form.is_valid():
            username = link_form.cleaned_data["username"]
            try:
                path = membership_link_renew(
                    workflow=workflow, actor=request.user, username=username
                )
            except DomainError as exc:
                row_error = exc.message
                status = exc.status_code
            else:
                invited = {
                    "username": username,
                    "role": "",
                    "link": request.build_absolute_uri(path),
                    "emailed": False,
                    "renewed": True,
                }
                status = 200
    elif action in ("role", "remove"):
        status = 400
        row_form: forms.Form = (
            RoleForm(request.POST) if action == "role" else RemoveForm(request.POST)
        )
        if row_form.is_valid():
            username = row_form.cleaned_data["username"]
            try:
                if action == "role":
                    membership_role_set(
                        workflow=workflow,
                        actor=request.user,
                        username=username,
                        role=row_form.cleaned_data["role"],
                    )
                    text = f"{username} is now {row_form.cleaned_data['role']}."
                else:
                    membership_remove(workflow=workflow, actor=request.user, username=username)
                    text = f"{username} removed."
            except DomainError as exc:
                row_error = exc.message
                status = exc.status_code
            else:
                messages.success(request, text)
                if username == request.user.username and action == "remove":
                    return redirect("review:home")
                return redirect("workspace:settings-members", workflow.slug)
        else:
            row_error = "Choose a member and a role."
    elif action is not None:
        messages.error(request, "Unknown action.")
        status = 400
    members = [
        {
            "username": membership.user.username,
            "email": membership.user.email,
            "role": role_of(membership),
            "password_set": membership.user.has_usable_password(),
            "is_you": membership.user_id == request.user.pk,
        }
        for membership in members_of(workflow=workflow)
    ]
    context = {
        "members": members,
        "invite_form": invite_form,
        "invited": invited,
        "row_error": row_error,
        "roles": ["reviewer", "admin"],
    }
    return _render(request, workflow, "members", context, status)


@login_required
@require_http_methods(["GET", "POST"])
def settings_tokens(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    workflow = _admin_workflow(request, slug)
    action = request.POST.get("action") if request.method == "POST" else None
    create_form = TokenCreateForm(request.POST if action == "create" else None)
    created: dict[str, Any] | None = None
    status = 200
    if action == "create":
        status = 400
        if create_form.is_valid():
            try:
                expires = token_expiry(expires_in_days=create_form.cleaned_data["expires_in_days"])
                row, key = workflow_token_create(
                    workflow=workflow,
                    actor=request.user,
                    name=create_form.cleaned_data["name"],
                    expires_at=expires,
                )
            except DomainError as exc:
                status = _refused(create_form, exc)
            else:
                created = {"name": row.token.name, "key": key, "id": row.token_id}
                create_form = TokenCreateForm()
                status = 201
    elif action == "revoke":
        status = 400
        revoke_form = TokenRevokeForm(request.POST)
        if revoke_form.is_valid():
            try:
                row = workflow_token_revoke(
                    workflow=workflow,
                    actor=request.user,
                    token_id=revoke_form.cleaned_data["token_id"],
                )
            except DomainError as exc:
                messages.error(request, exc.message)
                status = exc.status_code
            else:
                messages.success(request, f"Token {row.token.name} revoked.")
                return redirect("workspace:settings-tokens", workflow.slug)
    elif action is not None:
        messages.error(request, "Unknown action.")
        status = 400
    context = {
        "tokens": workflow_tokens(workflow=workflow),
        "create_form": create_form,
        "created": created,
        "submit_url": request.build_absolute_uri(reverse("case-create", args=[workflow.slug])),
    }
    return _render(request, workflow, "tokens", context, status)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """An invited person chooses their password with the one-time link (Django's own
    token: it stops working once the password is set, and after PASSWORD_RESET_TIMEOUT)."""

    template_name = "workspace/set_password.html"
    success_url = reverse_lazy("login")
    reset_url_token = "choose-password"  # noqa: S105 - a URL segment, not a secret

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Password set. Log in with your username and it.")
        return response
