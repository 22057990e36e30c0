"""Submit a folder of images as cases, through the bulk ingest service.

    python manage.py cases_import line-4 /data/batch-17 --by camera-4 \\
        [--manifest manifest.json] [--recursive] [--chunk 200]

Each image is one item, stored exactly as ``POST /api/v1/workflows/{slug}/cases/``
would store it (``processing.bulk.cases_bulk_create``): the same validation, the same
idempotency per ``external_id``. Without a manifest the ``external_id`` is the file's
path relative to the folder, so importing the same folder again stores nothing twice.
A manifest (the bulk endpoint's JSON list, ``file`` relative to the folder) names the
files and gives their keys and metadata. ``--by`` names the submitting user, who must
hold the submit right. Prints one JSON line per item and a summary; exits with status 1
when an item was refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.errors import DomainError
from processing.bulk import BulkItem, cases_bulk_create, manifest_parse
from workflows.access import access_workflow

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


class Command(BaseCommand):
    help = "Submit a folder of images as cases (the bulk ingest service)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="Workflow slug.")
        parser.add_argument("folder", type=Path)
        parser.add_argument("--by", required=True, help="Submitting user (submit right).")
        parser.add_argument("--manifest", type=Path, help="JSON list: file, external_id, metadata.")
        parser.add_argument("--recursive", action="store_true", help="Include sub-folders.")
        parser.add_argument("--chunk", type=int, default=200, help="Images read at a time.")

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        user = get_user_model().objects.filter(username=options["by"]).first()
        if user is None:
            raise CommandError(f"no user {options['by']!r}")
        try:
            workflow = access_workflow(user, options["workflow"], "can_submit")
        except DomainError as exc:
            raise CommandError(exc.message) from None
        pattern = "**/*" if options["recursive"] else "*"
        names = sorted(
            str(path.relative_to(folder))
            for path in folder.glob(pattern)
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        )
        try:
            if options["manifest"]:
                raw = options["manifest"].read_text()
                items = manifest_parse(raw, file_names=names)
            else:
                items = [BulkItem(file=name, external_id=name, metadata=None) for name in names]
        except (DomainError, OSError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from None
        chunk = max(1, options["chunk"])
        counts = {"created": 0, "existing": 0, "failed": 0}
        for start in range(0, len(items), chunk):
            results = cases_bulk_create(
                workflow=workflow,
                items=items[start : start + chunk],
                read=lambda name: (folder / name).read_bytes(),
                submitted_by=user,
            )
            for result in results:
                key = (
                    "failed" if result.error else "created" if result.status == 201 else "existing"
                )
                counts[key] += 1
                self.stdout.write(
                    json.dumps(
                        {
                            "file": result.file,
                            "external_id": result.external_id,
                            "status": result.status,
                            "id": result.id,
                            "error": result.error,
                        }
                    )
                )
        self.stdout.write(json.dumps({"items": len(items), **counts}))
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} of {len(items)} images were refused")
