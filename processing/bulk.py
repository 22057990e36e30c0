"""Bulk ingest: many images in one request, each stored as the single endpoint would.

``cases_bulk_create`` takes the items in manifest order and gives each to
``processing.services.case_create`` in its own transaction: the same validation, the
same idempotency per ``external_id``, the same next step. An item that is refused gets
the status and error the single endpoint would have answered; the others go on. What
is wrong with the request as a whole (the manifest, the count, the total size, a file
named twice) is refused before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.types import User
from kernel import strictjson
from kernel.errors import DomainError, InvalidInput, PayloadTooLarge
from processing.deadlines import deadline_parse
from processing.services import case_create
from workflows.models import Workflow
from workflows.services import metadata_parse

MANIFEST_FIELDS = frozenset({"file", "external_id", "metadata", "deadline_seconds", "deadline"})


@dataclass(frozen=True)
class BulkItem:
    """One manifest entry: the uploaded file it names, its key and metadata as sent."""

    file: str
    external_id: Any
    metadata: Any
    deadline_seconds: Any = None
    deadline: Any = None


@dataclass(frozen=True)
class BulkResult:
    file: str
    external_id: str | None
    status: int
    id: str | None
    error: dict[str, Any] | None


def bulk_limits_check(*, count: int, total_bytes: int) -> None:
    """Refuse a request over the item or byte limits (before anything is stored)."""
    if count == 0:
        raise InvalidInput("images: at least one image is required", field="images")
    limit = settings.LOOPGATE_BULK_MAX_ITEMS
    if count > limit:
        raise InvalidInput(f"images: {count} items is over the limit of {limit}", field="images")
    max_bytes = settings.LOOPGATE_BULK_MAX_BYTES
    if total_bytes > max_bytes:
        raise PayloadTooLarge(
            f"images: {total_bytes} bytes in all is over the limit of {max_bytes} bytes",
            field="images",
        )


def manifest_parse(raw: Any, *, file_names: Sequence[str]) -> list[BulkItem]:
    """The manifest (a JSON list of objects with ``file``, ``external_id``, ``metadata``),
    checked against the uploaded files: every file named once, every upload named.

    Without a manifest each uploaded file is one item, in upload order.
    """
    seen: set[str] = set()
    for name in file_names:
        if name in seen:
            raise InvalidInput(
                f"images: two uploaded files are named {name!r}; file names must be unique",
                field="images",
            )
        seen.add(name)
    if raw is None or raw == "":
        return [BulkItem(file=name, external_id=None, metadata=None) for name in file_names]
    return manifest_items(_manifest_json(raw), file_names=file_names)


def _manifest_json(raw: Any) -> list[Any]:
    try:
        entries = strictjson.loads(
            raw, what="manifest", max_bytes=settings.LOOPGATE_MAX_JSON_BODY_BYTES
        )
    except strictjson.JSONRefused as exc:
        raise InvalidInput(exc.message, field="manifest") from None
    if not isinstance(entries, list):
        raise InvalidInput(
            f"manifest: expected a JSON list, not {strictjson.json_type(entries)}",
            field="manifest",
        )
    return entries


def manifest_items(
    entries: Sequence[Any], *, file_names: Sequence[str], every_file_named: bool = True
) -> list[BulkItem]:
    """The manifest's entries as items, in manifest order, checked against the files: each
    names one file, no file twice; with ``every_file_named`` every file must be named
    (else the files it does not name follow as items without a key or metadata)."""
    items: list[BulkItem] = []
    named: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"manifest[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidInput(f"{where}: expected an object", field="manifest")
        unknown = sorted(set(entry) - MANIFEST_FIELDS)
        if unknown:
            raise InvalidInput(f"{where}: unknown fields {unknown}", field="manifest")
        file_name = entry.get("file")
        if not isinstance(file_name, str) or not file_name:
            raise InvalidInput(f"{where}.file: the uploaded file's name", field="manifest")
        if file_name in named:
            raise InvalidInput(f"{where}.file: {file_name!r} is named twice", field="manifest")
        if file_name not in file_names:
            raise InvalidInput(
                f"{where}.file: no uploaded image is named {file_name!r}", field="manifest"
            )
        named.add(file_name)
        items.append(
            BulkItem(
                file=file_name,
                external_id=entry.get("external_id"),
                metadata=entry.get("metadata"),
                deadline_seconds=entry.get("deadline_seconds"),
                deadline=entry.get("deadline"),
            )
        )
    missing = [name for name in file_names if name not in named]
    if missing and not every_file_named:
        return items + [BulkItem(file=name, external_id=None, metadata=None) for name in missing]
    if missing:
        raise InvalidInput(
            f"manifest: uploaded images not in the manifest: {missing[:5]!r}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
            field="manifest",
        )
    return items


def _refusal(exc: DomainError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "field": exc.field}


def case_bulk_item_create(
    *, workflow: Workflow, item: BulkItem, data: bytes, submitted_by: User | None
) -> BulkResult:
    """One item, as the single endpoint would store it; a refusal is its result."""
    external_id = item.external_id if isinstance(item.external_id, str) else None
    try:
        if item.external_id is not None and not isinstance(item.external_id, str):
            raise InvalidInput("external_id: must be a string", field="external_id")
        if len(data) > settings.LOOPGATE_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(
                f"image: {len(data)} bytes is over the limit of "
                f"{settings.LOOPGATE_MAX_UPLOAD_BYTES} bytes",
                field="image",
            )
        metadata = metadata_parse(item.metadata)
        if isinstance(item.deadline_seconds, bool):
            raise InvalidInput("deadline_seconds: must be a whole number", field="deadline_seconds")
        deadline_at = deadline_parse(seconds=item.deadline_seconds, at=item.deadline)
        result = case_create(
            workflow=workflow,
            image_data=data,
            external_id=external_id or None,
            metadata=metadata,
            submitted_by=submitted_by,
            deadline_at=deadline_at,
        )
    except DomainError as exc:
        return BulkResult(
            file=item.file,
            external_id=external_id,
            status=exc.status_code,
            id=None,
            error=_refusal(exc),
        )
    return BulkResult(
        file=item.file,
        external_id=result.case.external_id,
        status=201 if result.created else 200,
        id=str(result.case.id),
        error=None,
    )


def cases_bulk_create(
    *,
    workflow: Workflow,
    items: Sequence[BulkItem],
    read: Any,
    submitted_by: User | None,
) -> list[BulkResult]:
    """Store each item (``read(file_name) -> bytes``), in order; one result per item.
    A ``DomainError`` from ``read`` (an archive entry that cannot be read) is that item's
    result, like a refusal of its image."""
    results = []
    for item in items:
        try:
            data = read(item.file)
        except DomainError as exc:
            external_id = item.external_id if isinstance(item.external_id, str) else None
            results.append(
                BulkResult(
                    file=item.file,
                    external_id=external_id,
                    status=exc.status_code,
                    id=None,
                    error=_refusal(exc),
                )
            )
            continue
        results.append(
            case_bulk_item_create(
                workflow=workflow, item=item, data=data, submitted_by=submitted_by
            )
        )
    return results
