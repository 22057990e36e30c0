"""Writes of the workspace: workflows, their settings, members and tokens.

Every path that creates or changes a workflow — the API, the settings pages, the Django
admin and the management commands — goes through these functions, so a rule is checked
once. The caller has already checked access with ``workflows.access`` (the workflow's
admin right), except for ``workflow_create``, which checks the permission to create.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.services import api_token_create, api_token_revoke
from accounts.types import User
from decisions.routing import Level
from kernel.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from kernel.markdown import MAX_MARKDOWN_CHARS
from modelops.models import ModelVersion
from modelops.retraining import augmentation_clean
from review.models import Verdict
from workflows.images import image_validate
from workflows.labels import key_problem
from workflows.models import Case, LabelExample, Prediction, Workflow, WorkflowMembership
from workspace.models import WorkflowToken

logger = logging.getLogger(__name__)

# --- Rules of a workflow's settings ----------------------------------------------------

CREATE_PERMISSION = "workflows.add_workflow"
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Slugs that would shadow a page's own path (/workflows/new/).
RESERVED_SLUGS = frozenset({"new", "settings", "archive", "api", "admin"})
NAME_MAX = 200
DESCRIPTION_MAX = 2_000
LABELS_MIN, LABELS_MAX = 2, 100
LABEL_MAX = 64  # Case.decision_label, Verdict.label
COLOR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")

# The policy: changed only through the gated automation endpoint.
POLICY_FIELDS = (
    "level",
    "confidence_threshold",
    "class_thresholds",
    "audit_rate",
    "target_accuracy",
    "min_evidence",
    "evidence_confidence",
)
AUTOMATION_ENDPOINT = "PATCH /api/v1/workflows/{slug}/automation/"


@dataclass(frozen=True)
class Bound:
    minimum: float
    maximum: float
    integer: bool
    text: str


# Review settings: (bounds, what it means). Shared by the API schema and the forms.
REVIEW_SETTINGS: dict[str, Bound] = {
    "consensus_required": Bound(1, 9, True, "Verdicts that must agree to decide a case"),
    "gold_rate": Bound(0.0, 0.5, False, "Share of review tasks that are gold cases"),
    "review_lease_seconds": Bound(30, 86_400, True, "How long a reviewer holds a case"),
    "skip_delay_seconds": Bound(0, 86_400, True, "Before a skipped case returns to the queue"),
    "max_skips": Bound(1, 100, True, "Skips after which a case goes to the admins"),
    "hidden_suggestion_rate": Bound(
        0.0, 1.0, False, "Assistance: share of cases shown without the suggestion"
    ),
}
TEXT_FIELDS = ("name", "description", "instructions")
UPDATE_FIELDS = (
    *TEXT_FIELDS,
    "labels",
    "label_settings",
    *REVIEW_SETTINGS,
    "training_augmentation",
)


def policy_fields_refuse(data: Mapping[str, Any], *, slug: str = "{slug}") -> None:
    """Refuse automation-policy fields: they change only through the gated endpoint."""
    given = sorted(name for name in data if name in POLICY_FIELDS)
    if given:
        endpoint = AUTOMATION_ENDPOINT.replace("{slug}", slug)
        raise InvalidInput(
            f"{given[0]}: the automation policy is not set here; a workflow starts at "
            f"human_only and its policy changes only through {endpoint} (the evidence gate)",
            field=given[0],
            code="policy_field",
        )


def _text(value: Any, *, field: str, maximum: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: must be text", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field}: must not be blank", field=field)
    if len(value) > maximum:
        raise InvalidInput(f"{field}: at most {maximum} characters", field=field)
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\r\t" for c in value):
        raise InvalidInput(f"{field}: control characters are not allowed", field=field)
    return value


def slug_clean(slug: Any) -> str:
    if not isinstance(slug, str) or not SLUG_PATTERN.match(slug):
        raise InvalidInput(
            "slug: 1 to 64 lower-case letters, digits and hyphens, starting and ending "
            "with a letter or digit (it is in the workflow's URLs)",
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise InvalidInput(f"slug: {slug!r} is reserved; choose another", field="slug")
    return slug


def labels_clean(labels: Any) -> list[str]:
    if not isinstance(labels, (list, tuple)):
        raise InvalidInput("labels: a list of label names", field="labels")
    if not LABELS_MIN <= len(labels) <= LABELS_MAX:
        raise InvalidInput(
            f"labels: between {LABELS_MIN} and {LABELS_MAX} labels (got {len(labels)})",
            field="labels",
        )
    cleaned: list[str] = []
    seen: dict[str, str] = {}
    for position, raw in enumerate(labels):
        if not isinstance(raw, str):
            raise InvalidInput(f"labels[{position}]: must be text", field="labels")
        label = raw.strip()
        if not label:
            raise InvalidInput(f"labels[{position}]: must not be blank", field="labels")
        if len(label) > LABEL_MAX:
            raise InvalidInput(
                f"labels[{position}]: at most {LABEL_MAX} characters", field="labels"
            )
        if not label.isprintable():
            raise InvalidInput(f"labels[{position}]: only printable characters", field="labels")
        folded = label.casefold()
        if folded in seen:
            raise InvalidInput(
                f"labels: {label!r} is given twice (labels differ by more than case; "
                f"{seen[folded]!r} is already there)",
                field="labels",
            )
        seen[folded] = label
        cleaned.append(label)
    return cleaned


def label_settings_clean(value: Any, labels: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{label: {"key": "k", "color": "#rrggbb"}}``; blank entries are dropped."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(
            'label_settings: an object like {"ok": {"key": "k", "color": "#2e7d32"}}',
            field="label_settings",
        )
    cleaned: dict[str, dict[str, str]] = {}
    keys_taken: dict[str, str] = {}
    for label, entry in value.items():
        where = f"label_settings[{label!r}]"
        if label not in labels:
            raise InvalidInput(f"{where}: not one of the workflow's labels", field="label_settings")
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            raise InvalidInput(f"{where}: an object with key and color", field="label_settings")
        unknown = sorted(set(entry) - {"key", "color"})
        if unknown:
            raise InvalidInput(f"{where}: unknown fields {unknown}", field="label_settings")
        out: dict[str, str] = {}
        key = entry.get("key")
        if key not in (None, ""):
            if not isinstance(key, str):
                raise InvalidInput(f"{where}.key: one character", field="label_settings")
            problem = key_problem(key)
            if problem:
                raise InvalidInput(f"{where}.key: {problem}", field="label_settings")
            if key in keys_taken:
                raise InvalidInput(
                    f"{where}.key: {key!r} is already the key of {keys_taken[key]!r}",
                    field="label_settings",
                )
            keys_taken[key] = label
            out["key"] = key
        color = entry.get("color")
        if color not in (None, ""):
            if not isinstance(color, str) or not COLOR_PATTERN.match(color):
                raise InvalidInput(f"{where}.color: a colour like #2e7d32", field="label_settings")
            out["color"] = color.lower()
        if out:
            cleaned[label] = out
    return cleaned


def review_setting_clean(name: str, value: Any) -> int | float:
    bound = REVIEW_SETTINGS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a whole number" if bound.integer else "a number"
        raise InvalidInput(f"{name}: must be {kind}", field=name)
    if bound.integer and (isinstance(value, float) and not value.is_integer()):
        raise InvalidInput(f"{name}: must be a whole number", field=name)
    if not bound.minimum <= value <= bound.maximum:
        low, high = _fmt(bound.minimum), _fmt(bound.maximum)
        raise InvalidInput(f"{name}: must be between {low} and {high}", field=name)
    return int(value) if bound.integer else float(value)


def training_augmentation_clean(value: Any) -> dict[str, Any]:
    """A workflow's default training augmentation as stored: ``{}`` (given ``None`` or
    ``{}``) for the platform's orientation-safe default, else every setting, checked by
    the one augmentation rule (``modelops.retraining.augmentation_clean``) that a
    training run's own augmentation also goes through."""
    if value is None or value == {}:
        return {}
    return augmentation_clean(value, field="training_augmentation").as_dict()


def _fmt(number: float) -> str:
    return f"{number:g}"


def labels_in_use(*, workflow: Workflow, labels: Sequence[str]) -> dict[str, str]:
    """Of ``labels``, those the workflow's data names, with what names them first."""
    found: dict[str, str] = {}
    wanted = set(labels)
    checks: list[tuple[str, Any]] = [
        (
            "verdicts",
            Verdict.objects.filter(case__workflow=workflow, label__in=wanted).values_list(
                "label", flat=True
            ),
        ),
        (
            "decided cases",
            Case.objects.filter(workflow=workflow, decision_label__in=wanted).values_list(
                "decision_label", flat=True
            ),
        ),
        (
            "human labels",
            Case.objects.filter(workflow=workflow, human_label__in=wanted).values_list(
                "human_label", flat=True
            ),
        ),
        (
            "gold cases",
            Case.objects.filter(workflow=workflow, gold_label__in=wanted).values_list(
                "gold_label", flat=True
            ),
        ),
        (
            "predictions",
            Prediction.objects.filter(case__workflow=workflow, label__in=wanted).values_list(
                "label", flat=True
            ),
        ),
    ]
    for what, query in checks:
        for label in query.distinct():
            found.setdefault(label, what)
    for version in ModelVersion.objects.filter(workflow=workflow).only("labels", "name"):
        for label in version.labels:
            if label in wanted:
                found.setdefault(label, f"model version {version}")
    return found


# --- Who may create workflows -----------------------------------------------------------


def can_create_workflows(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and (user.is_superuser or user.has_perm(CREATE_PERMISSION))
    )


def workflow_creator_grant(*, user: User) -> None:
    """Allow ``user`` to create workflows (Django's ``workflows.add_workflow``)."""
    app_label, codename = CREATE_PERMISSION.split(".")
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    user.user_permissions.add(permission)


# --- Workflows ---------------------------------------------------------------------------


@transaction.atomic
def workflow_create(
    *,
    creator: User,
    slug: str,
    name: str,
    labels: Sequence[str],
    description: str = "",
    instructions: str = "",
    label_settings: Mapping[str, Any] | None = None,
    training_augmentation: Mapping[str, Any] | None = None,
    **review_settings: Any,
) -> Workflow:
    """A new workflow at ``human_only``, with ``creator`` as its admin (and a reviewer)."""
    if not can_create_workflows(creator):
        raise Forbidden("you may not create workflows (ask for the workflows.add_workflow right)")
    unknown = sorted(set(review_settings) - set(REVIEW_SETTINGS))
    if unknown:
        policy_fields_refuse(review_settings)
        raise InvalidInput(f"unknown fields: {unknown}", field=unknown[0])
    slug = slug_clean(slug)
    fields: dict[str, Any] = {
        "name": _text(name, field="name", maximum=NAME_MAX, required=True),
        "description": _text(description, field="description", maximum=DESCRIPTION_MAX),
        "instructions": _text(instructions, field="instructions", maximum=MAX_MARKDOWN_CHARS),
        "labels": labels_clean(labels),
    }
    fields["label_settings"] = label_settings_clean(label_settings, fields["labels"])
    fields["training_augmentation"] = training_augmentation_clean(training_augmentation)
    for setting, value in review_settings.items():
        fields[setting] = review_setting_clean(setting, value)
    if Workflow.objects.filter(slug=slug).exists():
        raise Conflict(f"slug: a workflow {slug!r} already exists", field="slug", code="slug_taken")
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(slug=slug, level=Level.HUMAN_ONLY.value, **fields)
    except IntegrityError:
        raise Conflict(
            f"slug: a workflow {slug!r} already exists", field="slug", code="slug_taken"
        ) from None
    WorkflowMembership.objects.create(
        workflow=workflow, user=creator, can_admin=True, can_review=True
    )
    logger.info("workflow %s created by %s", slug, creator)
    return workflow


def _locked(workflow: Workflow) -> Workflow:
    return Workflow.objects.select_for_update().get(pk=workflow.pk)


@transaction.atomic
def workflow_update(*, workflow: Workflow, actor: User, changes: Mapping[str, Any]) -> Workflow:
    """Change the settings named in ``changes`` (never the policy, never the slug).

    ``labels`` is the whole new list: labels are appended; one the workflow's data names
    (verdicts, decisions, human or gold labels, predictions, model versions) cannot be
    renamed or removed — archive the workflow and create a new one instead.
    """
    policy_fields_refuse(changes, slug=workflow.slug)
    unknown = sorted(set(changes) - set(UPDATE_FIELDS))
    if "slug" in unknown:
        raise InvalidInput("slug: a workflow's slug never changes (it is in URLs)", field="slug")
    if unknown:
        raise InvalidInput(f"unknown fields: {unknown}", field=unknown[0])
    row = _locked(workflow)
    fields: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in changes:
            maximum = {"name": NAME_MAX, "description": DESCRIPTION_MAX}.get(
                name, MAX_MARKDOWN_CHARS
            )
            fields[name] = _text(
                changes[name], field=name, maximum=maximum, required=name == "name"
            )
    for name in REVIEW_SETTINGS:
        if name in changes:
            fields[name] = review_setting_clean(name, changes[name])
    if "training_augmentation" in changes:
        fields["training_augmentation"] = training_augmentation_clean(
            changes["training_augmentation"]
        )
    labels = list(row.labels)
    if "labels" in changes:
        labels = _labels_change(row, labels_clean(changes["labels"]))
        fields["labels"] = labels
    if "label_settings" in changes:
        fields["label_settings"] = label_settings_clean(changes["label_settings"], labels)
    elif "labels" in changes:
        fields["label_settings"] = {
            label: entry for label, entry in row.label_settings.items() if label in labels
        }
    for name, value in fields.items():
        setattr(row, name, value)
    if fields:
        row.save(update_fields=list(fields))
    for name, value in fields.items():
        setattr(workflow, name, value)
    return workflow


def _labels_change(workflow: Workflow, new: list[str]) -> list[str]:
    old = list(workflow.labels)
    removed = [label for label in old if label not in new]
    added = [label for label in new if label not in old]
    if removed:
        used = labels_in_use(workflow=workflow, labels=removed)
        if used:
            label, what = next(iter(used.items()))
            raise Conflict(
                f"labels: {label!r} cannot be renamed or removed, it is named by {what}; "
                "labels with data are kept — archive this workflow and create a new one "
                "for a different label set",
                field="labels",
                code="label_in_use",
            )
    kept = [label for label in new if label in old]
    if kept != [label for label in old if label in new]:
        raise InvalidInput(
            "labels: existing labels keep their order; new labels are appended at the end",
            field="labels",
        )
    if new[: len(kept)] != kept:
        raise InvalidInput(
            "labels: new labels are appended after the existing ones", field="labels"
        )
    if added and workflow.level in (Level.PARTIAL.value, Level.FULL.value):
        raise Conflict(
            f"labels: the model decides cases at level {workflow.level}, and no deployed "
            "version knows the new labels; step the workflow down to assistance or below "
            "first",
            field="labels",
            code="level_too_high",
        )
    return new


@transaction.atomic
def workflow_archive(*, workflow: Workflow, actor: User) -> Workflow:
    """Archive: the workflow takes no new cases and leaves the default lists. Its data stays."""
    row = _locked(workflow)
    if row.archived_at is None:
        row.archived_at = timezone.now()
        row.save(update_fields=["archived_at"])
        logger.info("workflow %s archived by %s", row.slug, actor)
    workflow.archived_at = row.archived_at
    return workflow


@transaction.atomic
def workflow_unarchive(*, workflow: Workflow, actor: User) -> Workflow:
    row = _locked(workflow)
    if row.archived_at is not None:
        row.archived_at = None
        row.save(update_fields=["archived_at"])
        logger.info("workflow %s unarchived by %s", row.slug, actor)
    workflow.archived_at = None
    return workflow


# --- Members -------------------------------------------------------------------------------

ROLE_REVIEWER, ROLE_ADMIN = "reviewer", "admin"
ROLES = (ROLE_REVIEWER, ROLE_ADMIN)


def role_of(membership: WorkflowMembership) -> str:
    if membership.can_admin:
        return ROLE_ADMIN
    if membership.can_review:
        return ROLE_REVIEWER
    return "submitter"


def _role_clean(role: Any) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role: one of {', '.join(ROLES)}", field="role")
    return str(role)


def _username_clean(username: Any) -> str:
    if not isinstance(username, str) or not username.strip():
        raise InvalidInput("username: must not be blank", field="username")
    username = username.strip()
    if len(username) > 150:
        raise InvalidInput("username: at most 150 characters", field="username")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise InvalidInput(
            "username: letters, digits and @ . + - _ only", field="username"
        ) from None
    return username


def people_of(workflow: Workflow) -> Any:
    """The workflow's memberships of people (token accounts are on the Tokens page)."""
    return WorkflowMembership.objects.filter(workflow=workflow, user__workflow_token__isnull=True)


def _membership_locked(workflow: Workflow, username: str) -> WorkflowMembership:
    membership = (
        people_of(workflow)
        .select_for_update(of=("self",))
        .select_related("user")
        .filter(user__username=username)
        .first()
    )
    if membership is None:
        raise NotFound(f"{username!r} is not a member of {workflow.slug!r}", field="username")
    return membership


def _other_admins(workflow: Workflow, membership: WorkflowMembership) -> int:
    return (
        people_of(workflow)
        .filter(can_admin=True, user__is_active=True)
        .exclude(pk=membership.pk)
        .count()
    )


@dataclass(frozen=True)
class Invitation:
    membership: WorkflowMembership
    created_account: bool
    set_password_path: str | None
    """Only when the account was made now: the one-time link to choose a password."""
    emailed: bool


def set_password_path(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("workspace:set-password", args=[uid, token])


def email_configured() -> bool:
    """Whether invitations go out by email: a backend or an SMTP host was configured."""
    backend = settings.EMAIL_BACKEND
    if backend != "django.core.mail.backends.smtp.EmailBackend":
        return True
    return bool(getattr(settings, "LOOPGATE_EMAIL_CONFIGURED", False))


def membership_add(
    *,
    workflow: Workflow,
    actor: User,
    username: Any,
    role: Any,
    email: Any = "",
    site_url: str = "",
) -> Invitation:
    """Add ``username`` with ``role``. A username nobody has yet gets a new account with
    no password and a one-time link to choose one (emailed too when ``email`` is given and
    email is configured)."""
    username = _username_clean(username)
    role = _role_clean(role)
    email = _text(email, field="email", maximum=254)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidInput("email: not an email address", field="email") from None
    with transaction.atomic():
        _locked(workflow)
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        created = user is None
        if user is None:
            user = user_model.objects.create_user(username=username, email=email or "")
            user.set_unusable_password()
            user.save(update_fields=["password"])
        elif WorkflowToken.objects.filter(account=user).exists():
            raise InvalidInput(
                f"username: {username!r} is an API token's account", field="username"
            )
        if WorkflowMembership.objects.filter(workflow=workflow, user=user).exists():
            raise Conflict(
                f"username: {username!r} is already a member; change their role instead",
                field="username",
                code="already_member",
            )
        membership = WorkflowMembership.objects.create(
            workflow=workflow,
            user=user,
            can_review=True,
            can_admin=role == ROLE_ADMIN,
        )
        path = set_password_path(user) if created else None
    emailed = False
    if created and email and path and email_configured():
        emailed = _invitation_send(workflow, actor, user, email, f"{site_url}{path}")
    logger.info("%s added %s to %s as %s", actor, username, workflow.slug, role)
    return Invitation(
        membership=membership, created_account=created, set_password_path=path, emailed=emailed
    )


def _invitation_send(workflow: Workflow, actor: User, user: User, email: str, link: str) -> bool:
    try:
        send_mail(
            subject=f"You are invited to {workflow.name} on Loopgate",
            message=(
                f"{actor.username} added you to the workflow {workflow.name} as "
                f"{user.username}.\n\nChoose your password here (the link works once):\n"
                f"{link}\n"
            ),
            from_email=None,
            recipient_list=[email],
        )
    except Exception:
        logger.warning("invitation email to %s failed", email, exc_info=True)
        return False
    return True


@transaction.atomic
def membership_role_set(
    *, workflow: Workflow, actor: User, username: Any, role: Any
) -> WorkflowMembership:
    role = _role_clean(role)
    _locked(workflow)
    membership = _membership_locked(workflow, str(username))
    if role != ROLE_ADMIN and membership.can_admin and not _other_admins(workflow, membership):
        raise Conflict(
            f"{membership.user.username!r} is the last admin of {workflow.slug!r}; "
            "make someone else admin first",
            field="role",
            code="last_admin",
        )
    membership.can_admin = role == ROLE_ADMIN
    membership.can_review = True
    membership.save(update_fields=["can_admin", "can_review"])
    logger.info("%s made %s %s in %s", actor, membership.user.username, role, workflow.slug)
    return membership


@transaction.atomic
def membership_remove(*, workflow: Workflow, actor: User, username: Any) -> None:
    _locked(workflow)
    membership = _membership_locked(workflow, str(username))
    if membership.can_admin and not _other_admins(workflow, membership):
        raise Conflict(
            f"{membership.user.username!r} is the last admin of {workflow.slug!r}; "
            "make someone else admin first",
            field="username",
            code="last_admin",
        )
    membership.delete()
    logger.info("%s removed %s from %s", actor, membership.user.username, workflow.slug)


@transaction.atomic
def membership_link_renew(*, workflow: Workflow, actor: User, username: Any) -> str:
    """A new one-time set-password link for an invited person who has not chosen a
    password yet (the first link was lost or expired). Only for an account that has
    never logged in, has no password, is neither staff nor superuser, and belongs to
    this workflow alone: an admin must not take over an account another workflow uses."""
    _locked(workflow)
    membership = _membership_locked(workflow, str(username))
    user = membership.user
    pending = (
        not user.has_usable_password()
        and user.last_login is None
        and user.is_active
        and not (user.is_staff or user.is_superuser)
    )
    if not pending:
        raise Conflict(
            f"{user.username!r} has an account in use; they can log in (or reset their "
            "password with an administrator)",
            field="username",
            code="not_pending",
        )
    if WorkflowMembership.objects.filter(user=user).exclude(workflow=workflow).exists():
        raise Conflict(
            f"{user.username!r} is also a member of another workflow; only a superuser "
            "can give them a new link",
            field="username",
            code="not_pending",
        )
    logger.info("%s renewed the set-password link of %s in %s", actor, user.username, workflow.slug)
    return set_password_path(user)


# --- Tokens ----------------------------------------------------------------------------------

TOKEN_DAYS_MAX = 3650


def token_expiry(
    *, expires_at: datetime | None = None, expires_in_days: Any = None
) -> datetime | None:
    if expires_at is not None and expires_in_days not in (None, ""):
        raise InvalidInput(
            "expires_in_days: give expires_at or expires_in_days, not both",
            field="expires_in_days",
        )
    if expires_in_days not in (None, ""):
        if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int):
            raise InvalidInput("expires_in_days: a whole number of days", field="expires_in_days")
        if not 1 <= expires_in_days <= TOKEN_DAYS_MAX:
            raise InvalidInput(
                f"expires_in_days: between 1 and {TOKEN_DAYS_MAX}", field="expires_in_days"
            )
        return timezone.now() + timedelta(days=expires_in_days)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("expires_at: is in the past", field="expires_at")
    return expires_at


@transaction.atomic
def workflow_token_create(
    *, workflow: Workflow, actor: User, name: Any, expires_at: datetime | None = None
) -> tuple[WorkflowToken, str]:
    """A token that may submit cases to ``workflow`` only, and its key (shown once)."""
    name = _text(name, field="name", maximum=100, required=True)
    if workflow.archived_at is not None:
        raise Conflict(
            f"workflow {workflow.slug!r} is archived: it takes no cases, so no new tokens",
            code="archived",
        )
    account = get_user_model().objects.create_user(
        username=f"upstream~{workflow.slug}~{secrets.token_hex(6)}", first_name=name[:150]
    )
    account.set_unusable_password()
    account.save(update_fields=["password"])
    WorkflowMembership.objects.create(workflow=workflow, user=account, can_submit=True)
    token, key = api_token_create(user=account, name=name, expires_at=expires_at)
    row = WorkflowToken.objects.create(
        workflow=workflow, token=token, account=account, created_by=actor
    )
    logger.info("%s created token %s (%s) for %s", actor, token.pk, name, workflow.slug)
    return row, key


@transaction.atomic
def workflow_token_revoke(*, workflow: Workflow, actor: User, token_id: int) -> WorkflowToken:
    """Revoke the token and deactivate its account (idempotent)."""
    row = (
        WorkflowToken.objects.select_for_update()
        .select_related("token", "account")
        .filter(workflow=workflow, token_id=token_id)
        .first()
    )
    if row is None:
        raise NotFound(f"token {token_id} not found in {workflow.slug!r}")
    api_token_revoke(token_id=row.token_id)
    row.token.refresh_from_db()
    if row.revoked_by_id is None:
        row.revoked_by = actor
        row.save(update_fields=["revoked_by"])
    if row.account.is_active:
        row.account.is_active = False
        row.account.save(update_fields=["is_active"])
    logger.info("%s revoked token %s of %s", actor, token_id, workflow.slug)
    return row


# --- Example images of the labels ----------------------------------------------------------

LABEL_EXAMPLES_PER_LABEL = 8
# Examples are shown as thumbnails to every reviewer: smaller than a case may be.
LABEL_EXAMPLE_MAX_BYTES = 4 * 1024 * 1024
CAPTION_MAX = 200


def label_example_upload_read(upload: Any) -> bytes:
    """The bytes of an uploaded example image, refused (413) from its declared size
    before it is read when it is over the limit."""
    limit = min(LABEL_EXAMPLE_MAX_BYTES, settings.LOOPGATE_MAX_UPLOAD_BYTES)
    if upload is None:
        raise InvalidInput("image: an image file is required", field="image")
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(
            f"image: {upload.size} bytes is over the limit of {limit} bytes for an example",
            field="image",
        )
    return bytes(upload.read())


def label_example_add(
    *, workflow: Workflow, actor: User | None, label: Any, image_data: bytes, caption: Any = ""
) -> LabelExample:
    """Store an example image of ``label`` for the review screen's instructions.

    The image is checked like a case's image (an accepted format, every pixel decoded, the
    byte and pixel limits) before anything is stored. The workflow's row is locked while
    the per-label limit and the one-image-per-label rule are checked, so two uploads at
    once cannot pass them both. The file is written inside the transaction and removed
    again unless the row commits: a refusal or a failure leaves nothing behind.
    """
    if not isinstance(label, str) or label not in workflow.labels:
        raise InvalidInput(
            f"label: {label!r} is not a label of workflow {workflow.slug!r} "
            f"(its labels: {', '.join(workflow.labels)})",
            field="label",
        )
    caption = _text(caption, field="caption", maximum=CAPTION_MAX)
    info = image_validate(
        data=image_data,
        allowed_formats=settings.LOOPGATE_ALLOWED_IMAGE_FORMATS,
        max_bytes=min(LABEL_EXAMPLE_MAX_BYTES, settings.LOOPGATE_MAX_UPLOAD_BYTES),
        max_pixels=settings.LOOPGATE_MAX_IMAGE_PIXELS,
    )
    example = LabelExample(
        workflow=workflow,
        label=label,
        caption=caption,
        image_format=info.format,
        image_width=info.width,
        image_height=info.height,
        image_bytes=info.byte_size,
        image_sha256=info.sha256,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    committed = False

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    try:
        with transaction.atomic():
            transaction.on_commit(mark_committed)
            _locked(workflow)
            same_label = LabelExample.objects.filter(workflow=workflow, label=label)
            if same_label.filter(image_sha256=info.sha256).exists():
                raise Conflict(
                    f"image: this image is already an example of {label!r}",
                    field="image",
                    code="example_exists",
                )
            if same_label.count() >= LABEL_EXAMPLES_PER_LABEL:
                raise Conflict(
                    f"label: {label!r} has {LABEL_EXAMPLES_PER_LABEL} examples, the most a "
                    "label may have; remove one first",
                    field="label",
                    code="too_many_examples",
                )
            example.image.save(f"example.{info.extension}", ContentFile(image_data), save=False)
            example.save(force_insert=True)
    except BaseException:
        if example.image.name and not committed:
            example.image.storage.delete(example.image.name)
        raise
    logger.info("%s added an example of %s to %s", actor, label, workflow.slug)
    return example


@transaction.atomic
def label_example_remove(*, workflow: Workflow, actor: User | None, example_id: int) -> None:
    """Remove one example image of ``workflow``; its file goes once the removal commits."""
    row = LabelExample.objects.select_for_update().filter(workflow=workflow, pk=example_id).first()
    if row is None:
        raise NotFound(f"label example {example_id} not found in {workflow.slug!r}")
    storage, name = row.image.storage, row.image.name
    row.delete()
    if name:
        transaction.on_commit(lambda: storage.delete(name))
    logger.info("%s removed example %s of %s", actor, example_id, workflow.slug)
