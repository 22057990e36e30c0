"""Register a model file as a new version for a workflow, with the same checks as the UI.

    python manage.py register_model --workflow surface-inspection --name surface-cnn \\
        --architecture mobilenet_v3_small --arch-kwargs '{"width_mult": 0.5}' \\
        --input-size 96 --weights path/to/weights.pt [--runtime onnx] \\
        [--deploy-as shadow --reason "..."]

Prints the registered version as JSON. A refused file exits with status 1 and the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.runtimes import RUNTIMES
from kernel.errors import DomainError
from modelops.models import DeploymentRole, ModelSource
from modelops.serializers import ModelVersionOutput
from modelops.services import REGISTRABLE_ARCHITECTURES, deployment_create, model_version_register
from workflows.models import Workflow


class Command(BaseCommand):
    help = "Check and register a model file (state dict or TorchScript) for a workflow."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", required=True, help="Workflow slug.")
        parser.add_argument("--name", required=True, help="Model name, e.g. surface-cnn.")
        parser.add_argument("--architecture", required=True, choices=REGISTRABLE_ARCHITECTURES)
        parser.add_argument("--weights", required=True, type=Path, help="The model file.")
        parser.add_argument(
            "--labels", help="Comma-separated, in output order (default: the workflow's)."
        )
        parser.add_argument("--input-size", type=int, default=96)
        parser.add_argument(
            "--runtime",
            choices=RUNTIMES,
            default="eager",
            help="What serves it; onnx is checked against PyTorch on the workflow's "
            "labelled cases and refused when it differs.",
        )
        parser.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"))
        parser.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"))
        parser.add_argument("--arch-kwargs", default="{}", help="JSON object.")
        parser.add_argument("--note", default="", help="How it was trained (provenance).")
        parser.add_argument("--training", default="", help="JSON object: training details.")
        parser.add_argument("--user", help="Username recorded as the registrant.")
        parser.add_argument("--deploy-as", choices=DeploymentRole.values)
        parser.add_argument("--traffic-share", type=float)
        parser.add_argument("--reason", default="", help="Why (for --deploy-as).")

    def handle(self, *args: Any, **options: Any) -> None:
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(f"no workflow {options['workflow']!r}")
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        try:
            arch_kwargs = json.loads(options["arch_kwargs"])
            training = json.loads(options["training"]) if options["training"] else None
        except json.JSONDecodeError as exc:
            raise CommandError(f"--arch-kwargs/--training: not valid JSON ({exc})") from exc
        path: Path = options["weights"]
        if not path.is_file():
            raise CommandError(f"no file {path}")
        labels = options["labels"]
        try:
            with path.open("rb") as handle:
                version = model_version_register(
                    workflow=workflow,
                    name=options["name"],
                    architecture=options["architecture"],
                    weights=handle,
                    filename=path.name,
                    actor=actor,
                    source=ModelSource.COMMAND,
                    labels=[label.strip() for label in labels.split(",")] if labels else None,
                    input_size=options["input_size"],
                    mean=options["mean"],
                    std=options["std"],
                    arch_kwargs=arch_kwargs,
                    note=options["note"],
                    runtime=options["runtime"],
                    provenance={"training": training, "path": str(path)}
                    if training
                    else {"path": str(path)},
                )
            if options["deploy_as"]:
                deployment_create(
                    workflow=workflow,
                    model_version=version,
                    role=options["deploy_as"],
                    traffic_share=options["traffic_share"],
                    actor=actor,
                    reason=options["reason"]
                    or f"deployed by register_model as {options['deploy_as']}",
                )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(ModelVersionOutput(version).data, default=str, indent=2))
