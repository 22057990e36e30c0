"""Reads about workflows and their cases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Max, Min, Q, QuerySet
from django.utils import timezone

from kernel.cursor import Cursor, cursor_decode, cursor_encode
from kernel.errors import InvalidInput
from workflows.inputs import CaseFilters
from workflows.models import (
    Case,
    CaseStatus,
    LabelExample,
    PeriodicRun,
    WorkerHeartbeat,
    Workflow,
    case_label_expression,
)


@dataclass(frozen=True)
class ProcessingBacklog:
    """Ages in seconds, ``None`` when there is nothing to measure: the oldest case waiting
    for a worker, the last batch a worker took, the last worker heartbeat, the last
    periodic sweep."""

    oldest_waiting_age_seconds: float | None
    last_claim_age_seconds: float | None
    last_heartbeat_age_seconds: float | None
    last_sweep_age_seconds: float | None


def processing_backlog() -> ProcessingBacklog:
    """Cases waiting for a worker, and when a worker last took a batch or was seen alive.

    Ages in seconds, ``None`` when there is nothing to measure. Four indexed reads.
    """
    now = timezone.now()
    oldest = Case.objects.filter(status=CaseStatus.RECEIVED).aggregate(oldest=Min("created_at"))
    workers = WorkerHeartbeat.objects.aggregate(claim=Max("last_claim_at"), seen=Max("seen_at"))
    sweep = PeriodicRun.objects.filter(name="requeue-stalled-cases").first()

    def age(moment: datetime | None) -> float | None:
        return (now - moment).total_seconds() if moment else None

    return ProcessingBacklog(
        oldest_waiting_age_seconds=age(oldest["oldest"]),
        last_claim_age_seconds=age(workers["claim"]),
        last_heartbeat_age_seconds=age(workers["seen"]),
        last_sweep_age_seconds=age(sweep.last_run_at if sweep else None),
    )


# --- The case list ---------------------------------------------------------------------


def cases_filtered(*, workflow: Workflow, filters: CaseFilters) -> QuerySet[Case]:
    """The workflow's cases that pass ``filters``, unordered (see ``case_ordering``).

    Each condition is one an index of ``Case.Meta`` serves (``label`` is the indexed
    expression ``case_label_expression``); ``disagree`` joins the deciding prediction.
    """
    qs = Case.objects.filter(workflow=workflow)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    if filters.label is not None:
        qs = qs.alias(case_label=case_label_expression()).filter(case_label=filters.label)
    if filters.source is not None:
        qs = qs.filter(decision_source=filters.source)
    if filters.model_version_id is not None:
        qs = qs.filter(decision_model_version_id=filters.model_version_id)
    if filters.routed_level is not None:
        qs = qs.filter(routed_level=filters.routed_level)
    if filters.review_reason is not None:
        qs = qs.filter(review_reason=filters.review_reason)
    if filters.external_id is not None:
        qs = qs.filter(external_id=filters.external_id)
    if filters.created_after is not None:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before is not None:
        qs = qs.filter(created_at__lt=filters.created_before)
    if filters.audit is not None:
        audit = Q(review_reason="audit")
        qs = qs.filter(audit) if filters.audit else qs.exclude(audit)
    if filters.disagree is not None:
        disagree = (
            ~Q(human_label="")
            & Q(deciding_prediction__isnull=False)
            & ~Q(deciding_prediction__label=F("human_label"))
        )
        qs = qs.filter(disagree) if filters.disagree else qs.exclude(disagree)
    if filters.duplicate is not None:
        qs = qs.filter(duplicate_of__isnull=not filters.duplicate)
    if filters.duplicate_of is not None:
        qs = qs.filter(duplicate_of_id=filters.duplicate_of)
    if filters.ordering.lstrip("-") == "decided_at":
        qs = qs.filter(decided_at__isnull=False)
    return qs


def case_ordering(ordering: str, *, backwards: bool = False) -> list[str]:
    """ORDER BY of ``ordering`` (its column, then the id), reversed when reading back."""
    descending = ordering.startswith("-") != backwards
    column = ordering.lstrip("-")
    sign = "-" if descending else ""
    return [f"{sign}{column}", f"{sign}id"]


def _after(cursor: Cursor, *, ordering: str) -> Q:
    """Rows strictly after the cursor's position in the reading direction."""
    column = ordering.lstrip("-")
    descending = ordering.startswith("-") != cursor.backwards
    try:
        value = datetime.fromisoformat(cursor.value or "")
        case_id = uuid.UUID(cursor.id)
    except ValueError as exc:
        raise InvalidInput("cursor: not a valid cursor", field="cursor") from exc
    op = "lt" if descending else "gt"
    edge = "lte" if descending else "gte"
    # The first condition bounds the index range scan; the second breaks ties by id.
    return Q(**{f"{column}__{edge}": value}) & (
        Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"id__{op}": case_id})
    )


def _indexed_equality(filters: CaseFilters) -> bool:
    """Whether a filter that an index (workflow, column, created_at) serves is given."""
    if filters.ordering.lstrip("-") != "created_at" or filters.external_id is not None:
        return False
    return (
        filters.model_version_id is not None
        or filters.label is not None
        or filters.review_reason is not None
        or filters.audit is True
        or filters.duplicate is True
        or filters.duplicate_of is not None
        or filters.source is not None
        or filters.routed_level is not None
        or filters.status is not None
    )


@dataclass(frozen=True)
class CasePage:
    """A page of cases and the cursors of the pages beside it (``None`` at either end)."""

    cases: list[Case]
    next_cursor: str | None
    previous_cursor: str | None


def _position(case: Case, ordering: str, *, backwards: bool) -> str:
    moment = getattr(case, ordering.lstrip("-"))
    return cursor_encode(
        Cursor(
            ordering=ordering,
            value=moment.isoformat() if moment else None,
            id=str(case.id),
            backwards=backwards,
        )
    )


def cases_page(
    *,
    workflow: Workflow,
    filters: CaseFilters,
    cursor: str | None = None,
    limit: int = 50,
) -> CasePage:
    """One page of the case list: keyset pagination on (ordering column, id).

    A cursor is a signed position, so pages stay stable while cases arrive (a new case
    never shifts or repeats a row on the next page) and page 1000 costs what page 1 does.
    One query of ``limit + 1`` rows (the extra row says whether there is a next page).
    """
    ordering = filters.ordering
    position = cursor_decode(cursor, ordering=ordering) if cursor else None
    backwards = position.backwards if position else False
    qs = cases_filtered(workflow=workflow, filters=filters)
    if position is not None:
        qs = qs.filter(_after(position, ordering=ordering))
    if position is None and _indexed_equality(filters):
        # The first page starts at the newest (or oldest) matching case, found at the
        # edge of the filter's own index (an index-only lookup). Without this bound the
        # planner, which takes matching rows to be spread evenly over time, may walk the
        # created_at index from the newest case and filter: fast for a value spread
        # over time, a walk through most of the table for one from long ago (an old
        # model version). Later pages start at their cursor, which bounds them as well.
        column = ordering.lstrip("-")
        newest = ordering.startswith("-")
        edge = qs.aggregate(edge=Max(column) if newest else Min(column))["edge"]
        if edge is None:
            return CasePage(cases=[], next_cursor=None, previous_cursor=None)
        qs = qs.filter(**{f"{column}__{'lte' if newest else 'gte'}": edge})
    rows = list(
        qs.select_related("decision_model_version", "workflow").order_by(
            *case_ordering(ordering, backwards=backwards)
        )[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
        has_next, has_previous = position is not None, more
    else:
        has_next, has_previous = more, position is not None
    return CasePage(
        cases=rows,
        next_cursor=_position(rows[-1], ordering, backwards=False) if rows and has_next else None,
        previous_cursor=_position(rows[0], ordering, backwards=True)
        if rows and has_previous
        else None,
    )


def cases_count(*, workflow: Workflow, filters: CaseFilters) -> int:
    """How many cases pass ``filters`` (a count over the matching index range)."""
    return cases_filtered(workflow=workflow, filters=filters).count()


@dataclass(frozen=True)
class LabelExampleInfo:
    """One example image of a label, as the review screen and the settings page show it."""

    id: int
    label: str
    caption: str
    width: int
    height: int
    byte_size: int
    created_at: datetime

    @property
    def alt(self) -> str:
        """The image's text alternative: the label, and the caption when there is one."""
        return (
            f"Example of {self.label}: {self.caption}"
            if self.caption
            else (f"Example of {self.label}")
        )


def label_examples(*, workflow: Workflow) -> dict[str, list[LabelExampleInfo]]:
    """The workflow's example images by label, in the workflow's label order, oldest
    first within a label; every label has an entry (an empty list when it has none).
    One query."""
    found: dict[str, list[LabelExampleInfo]] = {label: [] for label in workflow.labels}
    rows = LabelExample.objects.filter(workflow=workflow).order_by("created_at", "id")
    for row in rows.only(
        "id", "label", "caption", "image_width", "image_height", "image_bytes", "created_at"
    ):
        if row.label not in found:
            continue  # a label removed since (only labels without data can be)
        found[row.label].append(
            LabelExampleInfo(
                id=row.pk,
                label=row.label,
                caption=row.caption,
                width=row.image_width,
                height=row.image_height,
                byte_size=row.image_bytes,
                created_at=row.created_at,
            )
        )
    return found
