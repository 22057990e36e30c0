"""Writes for workflows and cases: the case state machine and storing a new case.

What happens to a case next (scoring, routing, review) is the processing app's job
(``processing.services``); it calls ``case_store`` and the transition functions here.
"""

from __future__ import annotations

import json
import logging
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.types import User
from kernel import joinedwrites, strictjson
from kernel.bulkupdate import objects_update
from kernel.errors import Conflict, InvalidInput
from kernel.postgresql.base import unprepared
from workflows.hooks import cases_moved
from workflows.images import image_validate, phash_bands, phash_distance
from workflows.models import PHASH_BANDS, ActorType, Case, CaseEvent, CaseStatus, Workflow

logger = logging.getLogger(__name__)

# The case state machine: a table of allowed moves, changed only by case_transition.
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    CaseStatus.RECEIVED: frozenset(
        {CaseStatus.PROCESSING, CaseStatus.IN_REVIEW, CaseStatus.FAILED}
    ),
    CaseStatus.PROCESSING: frozenset(
        {CaseStatus.RECEIVED, CaseStatus.IN_REVIEW, CaseStatus.DECIDED, CaseStatus.FAILED}
    ),
    CaseStatus.IN_REVIEW: frozenset({CaseStatus.DECIDED}),
    # A verdict undone within its window puts a human-decided case back in review.
    CaseStatus.DECIDED: frozenset({CaseStatus.IN_REVIEW}),
    CaseStatus.FAILED: frozenset({CaseStatus.RECEIVED}),
}


class InvalidTransition(Conflict):
    code = "invalid_transition"


class WorkflowArchived(Conflict):
    code = "archived"


def case_event_record(
    *,
    case: Case,
    kind: str,
    actor_type: str,
    actor: User | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    from_status: str = "",
    to_status: str = "",
) -> CaseEvent:
    event = CaseEvent(
        case=case,
        kind=kind,
        actor_type=actor_type,
        actor=actor,
        reason=reason,
        data=data or {},
        from_status=from_status,
        to_status=to_status,
    )
    # Inside joinedwrites.joined() the event goes with the block's other writes (its id
    # unknown until then: no caller there reads it).
    joinedwrites.insert(event, pk_unknown=True)
    return event


def case_transition(
    *,
    case: Case,
    to_status: str,
    actor_type: str,
    actor: User | None = None,
    reason: str,
    data: dict[str, Any] | None = None,
    fields: tuple[str, ...] = (),
) -> CaseEvent:
    """Move ``case`` to ``to_status`` and record why. Raises InvalidTransition.

    Call inside a transaction, holding the case's row lock (``select_for_update``);
    ``fields`` names the other fields the caller changed, saved in the same UPDATE.
    """
    from_status = case.status
    if to_status not in CASE_TRANSITIONS[from_status]:
        raise InvalidTransition(f"case {case.id} cannot go from {from_status} to {to_status}")
    case.status = to_status
    joinedwrites.update(case, ["status", "updated_at", *fields])
    event = case_event_record(
        case=case,
        kind="status",
        actor_type=actor_type,
        actor=actor,
        reason=reason,
        data=data,
        from_status=from_status,
        to_status=to_status,
    )
    cases_moved(cases=[case], from_statuses=[from_status], to_status=to_status)
    return event


def cases_transition(
    *,
    cases: list[Case],
    to_status: str,
    actor_type: str,
    reason: str,
    data_of: Callable[[Case], dict[str, Any]] = lambda case: {},
) -> None:
    """``case_transition`` for a batch: one UPDATE and one INSERT of events.

    Call inside a transaction holding the cases' row locks; every move is checked
    against the same table before anything is written.
    """
    for case in cases:
        if to_status not in CASE_TRANSITIONS[case.status]:
            raise InvalidTransition(f"case {case.id} cannot go from {case.status} to {to_status}")
    if not cases:
        return
    now = timezone.now()
    Case.objects.filter(id__in=[case.id for case in cases]).update(status=to_status, updated_at=now)
    events = []
    from_statuses = [case.status for case in cases]
    for case in cases:
        events.append(
            CaseEvent(
                case=case,
                kind="status",
                actor_type=actor_type,
                reason=reason,
                data=data_of(case),
                from_status=case.status,
                to_status=to_status,
            )
        )
        case.status = to_status
        case.updated_at = now
    CaseEvent.objects.bulk_create(events)
    cases_moved(cases=cases, from_statuses=from_statuses, to_status=to_status)


@dataclass
class CaseMove:
    """One case's move in ``cases_move``: where it goes, why, and the other fields changed."""

    case: Case
    to_status: str
    actor_type: str
    reason: str
    data: dict[str, Any]
    fields: tuple[str, ...] = ()


def cases_move(*, moves: list[CaseMove]) -> None:
    """``case_transition`` for a batch of different moves: one UPDATE, one INSERT of events.

    Each case may go to its own status with its own reason and changed ``fields`` (all
    saved in the one UPDATE, from the case objects). Call inside a transaction holding
    the cases' row locks; every move is checked against the table before anything is
    written, and the hooks run once per destination status.
    """
    for move in moves:
        if move.to_status not in CASE_TRANSITIONS[move.case.status]:
            raise InvalidTransition(
                f"case {move.case.id} cannot go from {move.case.status} to {move.to_status}"
            )
    if not moves:
        return
    now = timezone.now()
    events = []
    moved: dict[str, tuple[list[Case], list[str]]] = {}
    fields = {"status", "updated_at"}
    for move in moves:
        case = move.case
        events.append(
            CaseEvent(
                case=case,
                kind="status",
                actor_type=move.actor_type,
                reason=move.reason,
                data=move.data,
                from_status=case.status,
                to_status=move.to_status,
            )
        )
        group = moved.setdefault(move.to_status, ([], []))
        group[0].append(case)
        group[1].append(case.status)
        case.status = move.to_status
        case.updated_at = now
        fields.update(move.fields)
    objects_update([move.case for move in moves], sorted(fields))
    CaseEvent.objects.bulk_create(events)
    for to_status, (cases, from_statuses) in moved.items():
        cases_moved(cases=cases, from_statuses=from_statuses, to_status=to_status)


def metadata_parse(raw: Any) -> dict[str, Any]:
    """``metadata`` as sent (a JSON text in a multipart form, or an object): a JSON object.

    Parsed by ``kernel.strictjson``: what it returns can be stored in ``jsonb`` as is.
    """
    if raw is None or raw == "":
        return {}
    limit = settings.LOOPGATE_MAX_METADATA_BYTES
    try:
        if isinstance(raw, (bytes, str)):
            return strictjson.loads(raw, what="metadata", max_bytes=limit, expect_object=True)
        if not isinstance(raw, dict):
            raise strictjson.JSONRefused(
                f"metadata: expected a JSON object as text, not {strictjson.json_type(raw)}"
            )
        strictjson.check_value(raw, what="metadata")
        if len(json.dumps(raw).encode()) > limit:
            raise strictjson.JSONRefused(f"metadata: over the limit of {limit} bytes")
    except strictjson.JSONRefused as exc:
        raise InvalidInput(exc.message, field="metadata") from None
    return raw


EXTERNAL_ID_MAX_LENGTH = 255


def external_id_clean(raw: str) -> str:
    """An idempotency key as stored: trimmed, printable, at most 255 characters.

    U+FFFD is refused because Django decodes multipart fields with ``errors="replace"``:
    two keys sent as different invalid UTF-8 bytes would arrive as the same text and
    collide. Control characters (NUL among them) and surrogates cannot be stored on
    every database or compared reliably.
    """
    external_id = raw.strip()
    if not external_id:
        raise InvalidInput("external_id: must not be blank", field="external_id")
    if len(external_id) > EXTERNAL_ID_MAX_LENGTH:
        raise InvalidInput(
            f"external_id: at most {EXTERNAL_ID_MAX_LENGTH} characters", field="external_id"
        )
    for position, char in enumerate(external_id):
        if char == "\ufffd":
            raise InvalidInput(
                f"external_id: U+FFFD at position {position} (not valid UTF-8?); "
                "send the key as valid UTF-8",
                field="external_id",
            )
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise InvalidInput(
                f"external_id: control character U+{ord(char):04X} at position {position}",
                field="external_id",
            )
    return external_id


@dataclass(frozen=True)
class CaseCreateResult:
    case: Case
    created: bool


# How many band-mates the lookup reads at once; a hash with more (a crowded band: many
# near-identical images) takes the bounded statement below instead.
BAND_MATES_AT_ONCE = 200


# The lookup's keys (``PhashKey``, ``<workflow id>/<digits>``), written as Django builds
# them in the indexes' DDL, so that each vendor matches the expression to its index.
_KEY_SQL = {
    "postgresql": ("((\"workflow_id\")::text || '/' || {})", "SUBSTRING"),
    "sqlite": ("(CAST(\"workflow_id\" AS text) || '/' || {})", "SUBSTR"),
}


def _keys_sql(vendor: str) -> tuple[str, list[str]]:
    """The exact hash's key expression, and each band's (``PHASH_BANDS``)."""
    key, substring = _KEY_SQL[vendor]
    return key.format('"phash"'), [
        key.format(f'{substring}("phash", {start}, {length})') for start, length in PHASH_BANDS
    ]


def _band_mates_sql(*, vendor: str, distance_in_sql: bool) -> str:
    """Every case of the workflow that shares a band of digits with the hash
    (``PHASH_BANDS``) or the whole hash, at most ``at_once`` of them: one statement, the
    key indexes OR-ed (a bitmap on PostgreSQL). On PostgreSQL only the first copy comes
    back (``bit_count``), with one more row that counts the band-mates read (``id`` NULL,
    the count in ``phash``'s place); elsewhere every band-mate comes back and Python
    measures. Each condition is a key (``PhashKey``) that only its own index answers."""
    exact, bands = _keys_sql(vendor)
    conditions = " OR ".join(
        [f"{exact} = %(key)s", *(f"{band} = %(key{index})s" for index, band in enumerate(bands))]
    )
    mates = (
        "WITH mates AS MATERIALIZED (SELECT id, duplicate_of_id, created_at, phash"  # noqa: S608
        f" FROM workflows_case WHERE {conditions})"
    )
    if not distance_in_sql:
        return f"{mates} SELECT * FROM mates LIMIT %(at_once)s"  # noqa: S608
    return (
        f"{mates}, seen AS (SELECT * FROM mates LIMIT %(at_once)s)"  # noqa: S608
        " SELECT * FROM (SELECT id, duplicate_of_id, created_at, phash FROM seen"
        " WHERE bit_count(('x' || phash)::bit(64) # ('x' || %(phash)s)::bit(64))"
        " <= %(distance)s ORDER BY created_at, id LIMIT 1) first"
        " UNION ALL SELECT NULL, NULL, NULL, count(*)::text FROM seen"
    )


def _crowded_sql(*, vendor: str, distance_in_sql: bool) -> str:
    """The lookup bounded for crowded bands: the first case with the same hash (index
    ``case_phash_key``), and of each band the newest ``window`` cases that share it
    (index ``case_phash_band_key_N``, read backwards). On PostgreSQL each band keeps only
    its first case within the distance (``bit_count``); elsewhere Python measures."""
    exact_key, bands = _keys_sql(vendor)
    exact = (
        "SELECT id, duplicate_of_id, created_at, phash FROM workflows_case"  # noqa: S608
        f" WHERE {exact_key} = %(key)s ORDER BY created_at, id LIMIT 1"
    )
    # Built from constants only (the keys' expressions); every value is a parameter.
    arms = [f"SELECT * FROM ({exact}) exact"]  # noqa: S608
    for index, band_key in enumerate(bands):
        band = (
            "SELECT id, duplicate_of_id, created_at, phash FROM workflows_case"  # noqa: S608
            f" WHERE {band_key} = %(key{index})s"
            " ORDER BY created_at DESC, id DESC LIMIT %(window)s"
        )
        if distance_in_sql:
            band = (
                f"SELECT * FROM ({band}) candidates WHERE bit_count"  # noqa: S608
                "(('x' || phash)::bit(64)"
                " # ('x' || %(phash)s)::bit(64)) <= %(distance)s"
                " ORDER BY created_at, id LIMIT 1"
            )
        arms.append(f"SELECT * FROM ({band}) band{index}")  # noqa: S608
    return " UNION ALL ".join(arms)


_DUPLICATE_SQL = {
    "postgresql": (
        _band_mates_sql(vendor="postgresql", distance_in_sql=True),
        _crowded_sql(vendor="postgresql", distance_in_sql=True),
    ),
    "sqlite": (
        _band_mates_sql(vendor="sqlite", distance_in_sql=False),
        _crowded_sql(vendor="sqlite", distance_in_sql=False),
    ),
}


def duplicate_lookup_parameters(*, workflow_id: int, phash: str) -> dict[str, Any]:
    """The lookup statements' parameters for ``phash`` in the workflow: its keys
    (``PhashKey``), the hash, and the bounds."""
    parameters: dict[str, Any] = {
        "key": f"{workflow_id}/{phash}",
        "phash": phash,
        "at_once": BAND_MATES_AT_ONCE + 1,
        "window": settings.LOOPGATE_DUPLICATE_NEAR_WINDOW,
        "distance": settings.LOOPGATE_DUPLICATE_MAX_DISTANCE,
    }
    for index, band in enumerate(phash_bands(phash)):
        parameters[f"key{index}"] = f"{workflow_id}/{band}"
    return parameters


def case_duplicate_root(*, workflow: Workflow, phash: str) -> uuid.UUID | None:
    """The first case of ``workflow`` whose image is the same as or near ``phash``.

    Exact: the first earlier case with the same hash. Near: Hamming distance <=
    ``LOOPGATE_DUPLICATE_MAX_DISTANCE`` (at most 4, the five bands' reach). A near copy
    shares at least one whole band of digits with the hash (``PHASH_BANDS``), so only
    the cases sharing a band are read, through the band indexes: the cost follows how
    many cases share a band, not how many the workflow has (D143). The indexes are keyed
    by workflow and digits in one expression (``PhashKey``), so no planner's estimate of
    the workflow's size can send the lookup through all of its cases instead (D150). Up to
    ``BAND_MATES_AT_ONCE`` band-mates are read in one statement; past that (a crowded
    band) a second statement reads the newest ``LOOPGATE_DUPLICATE_NEAR_WINDOW`` of each
    band, so that a crowded band bounds the work; an exact copy is always found. Returns
    the group's first case (a duplicate's own ``duplicate_of``).
    """
    if not phash:
        return None
    mates_sql, crowded_sql = _DUPLICATE_SQL.get(connection.vendor, _DUPLICATE_SQL["sqlite"])
    distance = settings.LOOPGATE_DUPLICATE_MAX_DISTANCE
    parameters = duplicate_lookup_parameters(workflow_id=workflow.pk, phash=phash)
    # Never prepared: a plan made while the table was small would read every case (D151).
    with unprepared(), connection.cursor() as cursor:
        cursor.execute(mates_sql, parameters)
        rows = cursor.fetchall()
        counted = [int(row[3]) for row in rows if row[0] is None]  # PostgreSQL's count row
        rows = [row for row in rows if row[0] is not None]
        seen = counted[0] if counted else len(rows)
        if seen > BAND_MATES_AT_ONCE:
            cursor.execute(crowded_sql, parameters)
            rows = cursor.fetchall()
    found = [
        (_as_datetime(created), str(pk), pk, root)
        for pk, root, created, other in rows
        if other == phash or phash_distance(other, phash) <= distance
    ]
    if not found:
        return None
    _created, _key, pk, root = min(found, key=lambda row: row[:2])
    return _as_uuid(root) or _as_uuid(pk)


def _as_uuid(value: Any) -> uuid.UUID | None:
    """A UUID column as Python reads it from a raw cursor (SQLite gives 32 hex digits)."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _as_datetime(value: Any) -> datetime:
    """A timestamp column from a raw cursor (SQLite gives its text)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _case_insert(case: Case, event: CaseEvent) -> None:
    """INSERT a new case and its first event: one statement on PostgreSQL (joined writes:
    the event's foreign key is checked when the statement, or deferred the transaction,
    ends, by then the case exists). A repeated ``external_id`` fails the whole statement
    with IntegrityError, as the case's own INSERT would."""
    with joinedwrites.joined():
        joinedwrites.insert(case)
        joinedwrites.insert(event, pk_unknown=True)


def case_store(
    *,
    workflow: Workflow,
    image_data: bytes,
    external_id: str | None,
    metadata: dict[str, Any],
    submitted_by: User | None,
    deadline_at: datetime | None = None,
    on_stored: Callable[[Case], None] | None = None,
) -> CaseCreateResult:
    """Store a case: its image, its row and its ``received`` event, in one transaction.

    ``on_stored`` runs inside that transaction with the new case (the processing app
    routes or queues it there, so a case is never committed without its next step).

    The same ``external_id`` twice in a workflow returns the existing case
    (``created=False``): the database's unique constraint decides, with no lookup first
    (the INSERT is tried, and its IntegrityError, inside the transaction's savepoint,
    leads to the existing row), also when two requests race; the stored file of the
    attempt is removed so nothing is left half-stored. An archived workflow takes no new
    case (409 ``archived``); a repeat of a case it already has still returns that case.
    """
    if external_id is not None:
        external_id = external_id_clean(external_id)
    if workflow.archived_at is not None:
        existing = (
            Case.objects.filter(workflow=workflow, external_id=external_id).first()
            if external_id is not None
            else None
        )
        if existing is not None:
            return CaseCreateResult(case=existing, created=False)
        raise WorkflowArchived(
            f"workflow {workflow.slug!r} is archived and takes no new cases; "
            "a workflow admin can unarchive it"
        )

    info = image_validate(
        data=image_data,
        allowed_formats=settings.LOOPGATE_ALLOWED_IMAGE_FORMATS,
        max_bytes=settings.LOOPGATE_MAX_UPLOAD_BYTES,
        max_pixels=settings.LOOPGATE_MAX_IMAGE_PIXELS,
    )
    case = Case(
        id=uuid.uuid4(),
        workflow=workflow,
        external_id=external_id,
        metadata=metadata,
        image_format=info.format,
        image_width=info.width,
        image_height=info.height,
        image_bytes=info.byte_size,
        image_sha256=info.sha256,
        phash=info.phash,
        duplicate_of_id=case_duplicate_root(workflow=workflow, phash=info.phash),
        submitted_by=submitted_by if getattr(submitted_by, "pk", None) else None,
        deadline_at=deadline_at,
    )
    received = CaseEvent(
        case=case,
        kind="received",
        actor_type=ActorType.USER,
        actor=case.submitted_by,
        reason="submitted through the API",
        to_status=CaseStatus.RECEIVED,
        data={
            "image_sha256": info.sha256,
            "format": info.format,
            "phash": info.phash,
            "duplicate_of": str(case.duplicate_of_id) if case.duplicate_of_id else None,
        },
    )
    committed = False

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    try:
        with transaction.atomic():
            # Registered first, so it runs before any other on-commit callback: from then
            # on the row exists and its file must stay, whatever a later callback raises.
            transaction.on_commit(mark_committed)
            case.image.save(f"{case.id}.{info.extension}", ContentFile(image_data), save=False)
            _case_insert(case, received)
            if on_stored is not None:
                on_stored(case)
    except IntegrityError:
        if committed:
            raise
        if case.image.name:
            case.image.storage.delete(case.image.name)
        existing = (
            Case.objects.filter(workflow=workflow, external_id=external_id).first()
            if external_id is not None
            else None
        )
        if existing is None:
            raise
        existing.workflow = workflow
        return CaseCreateResult(case=existing, created=False)
    except BaseException:
        if case.image.name and not committed:
            case.image.storage.delete(case.image.name)
        raise
    return CaseCreateResult(case=case, created=True)
