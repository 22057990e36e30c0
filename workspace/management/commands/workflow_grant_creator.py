"""Allow a user to create workflows from the product (``workflows.add_workflow``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspace.services import workflow_creator_grant


class Command(BaseCommand):
    help = "Allow USERNAME to create workflows (the workflows.add_workflow permission)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        workflow_creator_grant(user=user)
        self.stdout.write(f"{user.username} may create workflows.")
