"""Start a retraining run for a workflow, with the same checks as the models page and the API.

    python manage.py training_start --workflow arrows --architecture resnet18 \\
        --from-scratch --input-size 40 --epochs 6 \\
        [--augmentation '{"hflip": false, "vflip": false}'] \\
        [--sweep-seeds 1,2,3] [--sweep-lrs 0.003,0.001] [--reason "..."]

Queues the run on the training workers (like the page and the API) and prints it as JSON.
A refused request exits with status 1 and the reason, naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.errors import DomainError
from modelops.inputs import sweep_from_text, training_run_start_input
from modelops.retraining import training_run_start
from modelops.serializers import TrainingRunOutput
from workflows.models import Workflow

# Options passed to the one input grammar as given (None: not given, the default applies).
FIELDS = (
    "epochs",
    "lr",
    "batch_size",
    "test_share",
    "val_share",
    "seed",
    "architecture",
    "input_size",
    "reason",
)


class Command(BaseCommand):
    help = "Queue a retraining run (optionally a small hyper-parameter sweep) for a workflow."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", required=True, help="Workflow slug.")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--lr", type=float, help="Learning rate.")
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--test-share", type=float)
        parser.add_argument("--val-share", type=float)
        parser.add_argument("--seed", type=int, help="Seeds the split (and training).")
        parser.add_argument("--architecture", help="Train this architecture from scratch.")
        parser.add_argument("--from-scratch", action="store_true")
        parser.add_argument("--input-size", type=int)
        parser.add_argument(
            "--augmentation", help="JSON object; default: the workflow's default augmentation."
        )
        parser.add_argument("--sweep-seeds", help="Seeds to try, comma-separated.")
        parser.add_argument("--sweep-lrs", help="Learning rates to try, comma-separated.")
        parser.add_argument("--reason", help="Why (recorded on the run).")
        parser.add_argument("--user", help="Username recorded as the one who started it.")

    def handle(self, *args: Any, **options: Any) -> None:
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(f"no workflow {options['workflow']!r}")
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        data: dict[str, Any] = {
            name: options[name] for name in FIELDS if options.get(name) is not None
        }
        data["from_scratch"] = options["from_scratch"]
        if options["augmentation"]:
            try:
                data["augmentation"] = json.loads(options["augmentation"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"augmentation: not valid JSON ({exc})") from exc
        data["sweep"] = sweep_from_text(options["sweep_seeds"], options["sweep_lrs"])
        try:
            training, reason = training_run_start_input(data)
            run = training_run_start(
                workflow=workflow, actor=actor, request=training, reason=reason, trigger="manual"
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(TrainingRunOutput(run).data, indent=2, default=str))
