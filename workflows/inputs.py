"""The case list's filters, read from query parameters by one definition.

The case list API, the case list page and the export read their filters here, so the
same query gives the same cases (or the same message) everywhere. A blank value counts
as not given; a value that cannot be used is a 400 naming its parameter.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings
from django.utils import timezone

from decisions.routing import Level, ReviewReason
from kernel.bounds import ID_MAX, bounded_int
from kernel.errors import InvalidInput
from workflows.models import Case, CaseStatus, DecisionSource, Workflow

ORDERINGS = ("-created_at", "created_at", "-decided_at", "decided_at")
DEFAULT_ORDERING = "-created_at"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_EXTERNAL_ID = 255
MAX_MODEL_VERSION = 300

# The filters, with what each means (the API docs and the page's form use these).
FILTER_HELP: dict[str, str] = {
    "status": "The case's status: " + ", ".join(CaseStatus.values) + ".",
    "label": "The case's label: its human label where a human labelled it (a review, an "
    "audit), else its decision label (the model's decision not yet audited).",
    "source": "Who decided the case: model or human.",
    "model_version": "The model version that decided the case: its id or its tag (name:vN).",
    "routed_level": "The automation level the case was routed at: "
    + ", ".join(level.value for level in Level)
    + ".",
    "review_reason": "Why the case went to a human: "
    + ", ".join(reason.value for reason in ReviewReason)
    + ".",
    "external_id": "The upstream system's id of the case (exact match).",
    "created_after": "Created at or after this moment (ISO 8601 date or date-time; a "
    "date is midnight UTC).",
    "created_before": "Created before this moment (exclusive; ISO 8601 date or "
    "date-time; a date is midnight UTC).",
    "disagree": "true: a human labelled the case and the model's prediction (the one "
    "that decided it, or was routed with it) says otherwise; false: the opposite.",
    "audit": "true: the case was drawn for the audit sample (a model decision checked "
    "blind by a human); false: it was not.",
    "duplicate": "true: the case's image is the same as or nearly identical to an earlier "
    "case's (it counts once in evidence); false: the first case of its image (new or the "
    "first of a group of copies).",
    "duplicate_of": "The id of a group's first case: lists its later copies.",
}

# Filters that say what the model did: for readers who may see the model's output.
MODEL_REVEALING = (
    "label",
    "source",
    "model_version",
    "routed_level",
    "review_reason",
    "disagree",
    "audit",
)

# Filters on duplicates: a reviewer must not look up an earlier verdict of the same image
# (the case API hides ``duplicate_of`` from readers who may not see the routing, D88).
DUPLICATE_REVEALING = ("duplicate", "duplicate_of")


@dataclass(frozen=True)
class CaseFilters:
    """What to list. ``None`` (or ``""``) means not filtered."""

    status: str | None = None
    label: str | None = None
    source: str | None = None
    model_version_id: int | None = None
    routed_level: str | None = None
    review_reason: str | None = None
    external_id: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    disagree: bool | None = None
    audit: bool | None = None
    duplicate: bool | None = None
    duplicate_of: uuid.UUID | None = None
    ordering: str = DEFAULT_ORDERING

    def given(self) -> list[str]:
        """The names of the parameters that filter (or order) anything."""
        names = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "ordering":
                if value != DEFAULT_ORDERING:
                    names.append("ordering")
            elif value is not None:
                names.append("model_version" if field.name == "model_version_id" else field.name)
        return names

    def model_revealing(self) -> list[str]:
        """The given parameters that would reveal what the model did."""
        revealing = [
            name for name in self.given() if name in MODEL_REVEALING or name in DUPLICATE_REVEALING
        ]
        if self.ordering.lstrip("-") == "decided_at":
            revealing.append("ordering")
        return revealing


FILTER_PARAMETERS = (*tuple(FILTER_HELP), "ordering")
LIST_PARAMETERS = (*FILTER_PARAMETERS, "cursor", "limit")


def _text(params: Mapping[str, Any], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _choice(params: Mapping[str, Any], name: str, choices: list[str]) -> str | None:
    value = _text(params, name)
    if value is not None and value not in choices:
        raise InvalidInput(f"{name}: {value[:64]!r} is not one of {', '.join(choices)}", field=name)
    return value


def _boolean(params: Mapping[str, Any], name: str) -> bool | None:
    value = _text(params, name)
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{name}: must be true or false", field=name)


def _moment(params: Mapping[str, Any], name: str) -> dt.datetime | None:
    value = _text(params, name)
    if value is None:
        return None
    problem = f"{name}: must be an ISO 8601 date (2026-11-30) or date-time (2026-11-30T08:00Z)"
    if len(value) > 40:
        raise InvalidInput(problem, field=name)
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
        else:
            if len(value) > 16 and value[-6] == " ":
                # A "+01:00" offset sent unencoded in a query string arrives as " 01:00".
                value = value[:-6] + "+" + value[-5:]
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(problem, field=name) from exc
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    if (
        not dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        <= moment
        <= dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
    ):
        raise InvalidInput(f"{name}: out of range", field=name)
    return moment


def _case_id(params: Mapping[str, Any], name: str) -> uuid.UUID | None:
    value = _text(params, name)
    if value is None:
        return None
    try:
        if len(value) > 40:
            raise ValueError(value)
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput(f"{name}: must be a case id (a UUID)", field=name) from exc


def _model_version(params: Mapping[str, Any]) -> int | None:
    # The version model, through the case's foreign key (modelops is a higher layer).
    versions = Case._meta.get_field("decision_model_version").related_model._default_manager
    value = _text(params, "model_version")
    if value is None:
        return None
    if len(value) > MAX_MODEL_VERSION:
        raise InvalidInput("model_version: too long", field="model_version")
    if value.isascii() and value.isdigit():
        version_id = bounded_int(value, name="model_version", minimum=1, maximum=ID_MAX)
        found = versions.filter(pk=version_id).values_list("pk", flat=True).first()
    else:
        name, sep, number = value.rpartition(":v")
        found = None
        if sep and number.isascii() and number.isdigit() and len(number) < 10:
            found = (
                versions.filter(name=name, version=int(number)).values_list("pk", flat=True).first()
            )
    if found is None:
        raise InvalidInput(
            f"model_version: no model version {value[:64]!r} (give its id or name:vN)",
            field="model_version",
        )
    return found


def case_filters_parse(
    params: Mapping[str, Any], *, workflow: Workflow, allowed: tuple[str, ...] = LIST_PARAMETERS
) -> CaseFilters:
    """The filters in ``params`` (query parameters). Unknown parameters are refused too,
    so a misspelt filter is never silently ignored."""
    for name in params:
        if name not in allowed:
            raise InvalidInput(
                f"{str(name)[:64]}: unknown parameter (known: {', '.join(allowed)})",
                field=str(name)[:64],
            )
    label = _text(params, "label")
    if label is not None and label not in workflow.labels:
        raise InvalidInput(
            f"label: {label[:64]!r} is not a label of workflow {workflow.slug!r}", field="label"
        )
    external_id = _text(params, "external_id")
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise InvalidInput(
            f"external_id: at most {MAX_EXTERNAL_ID} characters", field="external_id"
        )
    created_after = _moment(params, "created_after")
    created_before = _moment(params, "created_before")
    if created_after and created_before and created_after >= created_before:
        raise InvalidInput(
            "created_before: must be later than created_after", field="created_before"
        )
    return CaseFilters(
        status=_choice(params, "status", list(CaseStatus.values)),
        label=label,
        source=_choice(params, "source", list(DecisionSource.values)),
        model_version_id=_model_version(params),
        routed_level=_choice(params, "routed_level", [level.value for level in Level]),
        review_reason=_choice(params, "review_reason", [reason.value for reason in ReviewReason]),
        external_id=external_id,
        created_after=created_after,
        created_before=created_before,
        disagree=_boolean(params, "disagree"),
        audit=_boolean(params, "audit"),
        duplicate=_boolean(params, "duplicate"),
        duplicate_of=_case_id(params, "duplicate_of"),
        ordering=_choice(params, "ordering", list(ORDERINGS)) or DEFAULT_ORDERING,
    )


def case_list_limit(params: Mapping[str, Any]) -> int:
    value = _text(params, "limit")
    if value is None:
        return DEFAULT_LIMIT
    return bounded_int(value, name="limit", minimum=1, maximum=MAX_LIMIT)


def bulk_upload_limits() -> dict[str, int]:
    """The bulk limits as the zip upload form states them (and its script checks)."""
    return {
        "items": settings.LOOPGATE_BULK_MAX_ITEMS,
        "bytes": settings.LOOPGATE_BULK_MAX_BYTES,
        "megabytes": settings.LOOPGATE_BULK_MAX_BYTES // (1024 * 1024),
        "image_megabytes": settings.LOOPGATE_MAX_UPLOAD_BYTES // (1024 * 1024),
    }
