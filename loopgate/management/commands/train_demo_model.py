"""Train the demo model on synthetic inspection images (wraps ``python -m inference.train_demo``).

    python manage.py train_demo_model [--out-dir inference/assets] [--seed 0] [...]

With the defaults it reproduces the shipped ``inference/assets/demo_model.pt`` and its
model card on the CPU. Any further options are passed to the trainer (``--help`` lists
them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference import train_demo


class Command(BaseCommand):
    help = "Train the demo CNN on synthetic inspection images and write it with its model card."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out-dir", type=Path, default=Path(settings.BASE_DIR) / "inference" / "assets"
        )
        parser.add_argument("trainer_args", nargs="*", help="Passed on to inference.train_demo.")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = ["--out-dir", str(options["out_dir"]), *options["trainer_args"]]
        status = train_demo.main(argv)
        if status:
            raise CommandError(f"training failed with status {status}")
