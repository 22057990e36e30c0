"""Export a workflow's labelled cases: JSON Lines, CSV, or a zip of images by label.

Everything is generated lazily, a batch of rows at a time, so an export of a million
cases needs the memory of one batch (``EXPORT_BATCH`` rows and their verdicts) whatever
its size: cases are read with a server-side cursor (``QuerySet.iterator``), their
verdicts with one query per batch, and each line is yielded as soon as it is written.
The zip is written by zipstream-ng as the images are read (stored, not compressed:
PNG and JPEG are compressed already); only its central directory, a few hundred bytes
per file, grows with the export (D33).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Count, QuerySet, Sum
from zipstream import ZIP_STORED, ZipStream

from review.models import Verdict
from workflows.inputs import CaseFilters
from workflows.models import Case, Workflow, case_label_expression
from workflows.selectors import case_ordering, cases_filtered

EXPORT_BATCH = 2000
FORMATS = ("jsonl", "csv", "zip")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "zip": "application/zip",
}
IMAGE_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
CSV_COLUMNS = (
    "case_id",
    "external_id",
    "label",
    "label_source",
    "decision_label",
    "decision_source",
    "model_version",
    "confidence",
    "human_label",
    "status",
    "created_at",
    "decided_at",
    "labelled_at",
    "duplicate_of",
    "verdicts",
    "metadata",
    "image_url",
)
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection):
# such a cell is written with a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "@", "\t", "\r")
# Zip: bytes a stored entry adds beside its data (local header, data descriptor, central
# directory record) beyond its name; for the progress estimate only.
_ZIP_ENTRY_OVERHEAD = 30 + 24 + 46 + 20

_FIELDS = (
    "id",
    "external_id",
    "case_label",
    "human_label",
    "decision_label",
    "decision_source",
    "decision_confidence",
    "decision_model_version__name",
    "decision_model_version__version",
    "status",
    "created_at",
    "decided_at",
    "labelled_at",
    "metadata",
    "image",
    "image_format",
    "duplicate_of",
)


def labelled_cases(*, workflow: Workflow, filters: CaseFilters) -> QuerySet[Case]:
    """The cases an export holds: those that pass ``filters`` and have a label (a human
    label, or a decision). Their label is ``case_label_expression``."""
    return (
        cases_filtered(workflow=workflow, filters=filters)
        .alias(export_label=case_label_expression())
        .exclude(export_label="")
    )


@dataclass(frozen=True)
class ExportSize:
    """What an export will hold: its rows, and the bytes of their images (for the zip)."""

    rows: int
    image_bytes: int

    def estimate(self, fmt: str) -> int | None:
        """The zip's size, near enough for a progress bar (None for the text formats)."""
        if fmt != "zip":
            return None
        return self.image_bytes + self.rows * (_ZIP_ENTRY_OVERHEAD + 2 * 60) + 22


def export_size(*, workflow: Workflow, filters: CaseFilters) -> ExportSize:
    totals = labelled_cases(workflow=workflow, filters=filters).aggregate(
        rows=Count("id"), image_bytes=Sum("image_bytes")
    )
    return ExportSize(rows=totals["rows"] or 0, image_bytes=totals["image_bytes"] or 0)


def _batches(workflow: Workflow, filters: CaseFilters) -> Iterator[list[dict[str, Any]]]:
    """The export's cases with their standing verdicts, ``EXPORT_BATCH`` at a time."""
    rows = (
        labelled_cases(workflow=workflow, filters=filters)
        .annotate(case_label=case_label_expression())
        .order_by(*case_ordering(filters.ordering))
        .values(*_FIELDS)
        .iterator(chunk_size=EXPORT_BATCH)
    )
    while batch := list(islice(rows, EXPORT_BATCH)):
        verdicts: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for case_id, reviewer, label, comment, created_at in (
            Verdict.objects.filter(case_id__in=[row["id"] for row in batch])
            .filter(retracted_at__isnull=True)
            .order_by("created_at", "id")
            .values_list("case_id", "reviewer__username", "label", "comment", "created_at")
        ):
            verdicts[case_id].append(
                {
                    "reviewer": reviewer,
                    "label": label,
                    "comment": comment,
                    "created_at": _iso(created_at),
                }
            )
        for row in batch:
            row["verdicts"] = verdicts.get(row["id"], [])
        yield batch


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def export_record(row: dict[str, Any], *, image_url: Callable[[str], str]) -> dict[str, Any]:
    """One exported case, as JSON Lines writes it (and CSV flattens it)."""
    version = None
    if row["decision_model_version__name"]:
        version = f"{row['decision_model_version__name']}:v{row['decision_model_version__version']}"
    case_id = str(row["id"])
    return {
        "case_id": case_id,
        "external_id": row["external_id"],
        "label": row["case_label"],
        "label_source": "human" if row["human_label"] else row["decision_source"] or None,
        "decision_label": row["decision_label"] or None,
        "decision_source": row["decision_source"] or None,
        "model_version": version,
        "confidence": row["decision_confidence"],
        "human_label": row["human_label"] or None,
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
        "decided_at": _iso(row["decided_at"]),
        "labelled_at": _iso(row["labelled_at"]),
        # The group's first case where the image copies an earlier one's (it counts
        # once: keep copies out of one side of a train/test split).
        "duplicate_of": str(row["duplicate_of"]) if row["duplicate_of"] else None,
        "verdicts": row["verdicts"],
        "metadata": row["metadata"],
        "image_url": image_url(case_id),
    }


def export_jsonl(
    *, workflow: Workflow, filters: CaseFilters, image_url: Callable[[str], str]
) -> Iterator[bytes]:
    """One JSON object per line per case; a batch of lines per yielded chunk."""
    for batch in _batches(workflow, filters):
        yield "".join(
            json.dumps(export_record(row, image_url=image_url), ensure_ascii=False) + "\n"
            for row in batch
        ).encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_csv(
    *, workflow: Workflow, filters: CaseFilters, image_url: Callable[[str], str]
) -> Iterator[bytes]:
    """A header row, then one row per case; verdicts and metadata as JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    for batch in _batches(workflow, filters):
        buffer.seek(0)
        buffer.truncate()
        for row in batch:
            record = export_record(row, image_url=image_url)
            confidence = record["confidence"]
            record["confidence"] = None if confidence is None else repr(confidence)
            writer.writerow([_cell(record[column]) for column in CSV_COLUMNS])
        yield buffer.getvalue().encode()


def _folder(label: str) -> str:
    """A label as a safe folder name (no path separators, no "." or "..")."""
    name = label.replace("/", "_").replace("\\", "_").strip() or "_"
    return "_" + name if name in (".", "..") else name


def _file_chunks(name: str) -> Iterable[bytes]:
    with default_storage.open(name, "rb") as handle:
        while chunk := handle.read(64 * 1024):
            yield chunk


def export_zip(*, workflow: Workflow, filters: CaseFilters) -> Iterator[bytes]:
    """``<label>/<case id>.<ext>`` for every case, streamed as the images are read. A
    case whose stored image is gone is listed in ``MISSING.txt`` at the end."""
    stream = ZipStream(compress_type=ZIP_STORED, sized=False)
    missing: list[str] = []
    for batch in _batches(workflow, filters):
        for row in batch:
            case_id = str(row["id"])
            if not row["image"] or not default_storage.exists(row["image"]):
                missing.append(case_id)
                continue
            extension = IMAGE_EXTENSIONS.get(row["image_format"], "bin")
            stream.add(
                _file_chunks(row["image"]),
                f"{_folder(row['case_label'])}/{case_id}.{extension}",
            )
            yield from stream.all_files()
    if missing:
        stream.add(
            "".join(f"{case_id}\n" for case_id in missing).encode(),
            "MISSING.txt",
        )
    yield from stream.finalize()
