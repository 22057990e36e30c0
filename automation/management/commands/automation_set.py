"""Change a workflow's automation policy from the command line, through the evidence gate.

    python manage.py automation_set surface-inspection --level partial \\
        --reason "200 shadow labels at 97%" [--by alice]
    python manage.py automation_set surface-inspection --level full --audit-rate 0.02 \\
        --reason "pilot, signed off by QA" --override --by root

The same service as the API, the automation page and the Django admin
(``automation.services.automation_update``): the same gate, the same audit-log entry.
``--by`` names the user recorded as making the change; ``--override`` lets a superuser
(named with ``--by``) pass what the gate refuses, logged as overridden. Prints the
audit-log entry as JSON; a refusal exits with status 1 and the reason.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from automation.serializers import LevelChangeOutput
from automation.services import automation_update
from decisions.routing import Level
from kernel.errors import DomainError
from workflows.models import Workflow


class Command(BaseCommand):
    help = "Change a workflow's automation policy through the evidence gate (logged)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="Workflow slug.")
        parser.add_argument("--level", choices=[level.value for level in Level])
        parser.add_argument("--confidence-threshold", type=float)
        parser.add_argument("--audit-rate", type=float)
        parser.add_argument("--target-accuracy", type=float)
        parser.add_argument("--target-error", type=float)
        parser.add_argument("--min-evidence", type=int)
        parser.add_argument(
            "--class-thresholds",
            help='JSON object replacing the per-class rules: {"ok": 0.9, "crack": null}.',
        )
        parser.add_argument("--reason", required=True, help="Why; recorded in the audit log.")
        parser.add_argument("--by", help="Username recorded as making the change.")
        parser.add_argument(
            "--override",
            action="store_true",
            help="Pass what the evidence gate refuses (needs --by a superuser; logged).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(f"no workflow {options['workflow']!r}")
        actor = None
        if options["by"]:
            actor = get_user_model().objects.filter(username=options["by"]).first()
            if actor is None:
                raise CommandError(f"no user {options['by']!r}")
        if options["override"] and actor is None:
            raise CommandError("--override needs --by <superuser username>: who overrides")
        changes: dict[str, Any] = {
            name: options[name]
            for name in (
                "level",
                "confidence_threshold",
                "audit_rate",
                "target_accuracy",
                "target_error",
                "min_evidence",
            )
            if options[name] is not None
        }
        if options["class_thresholds"] is not None:
            try:
                changes["class_thresholds"] = json.loads(options["class_thresholds"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--class-thresholds: not JSON ({exc})") from exc
        try:
            change = automation_update(
                workflow=workflow,
                actor=actor,
                reason=options["reason"],
                changes=changes,
                override=options["override"],
            )
        except DomainError as exc:
            raise CommandError(f"refused ({exc.code}): {exc.message}") from exc
        self.stdout.write(json.dumps(LevelChangeOutput(change).data, default=str))
