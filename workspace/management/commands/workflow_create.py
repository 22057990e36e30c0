"""Create a workflow with an admin, through the same service as the API and the pages."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.errors import DomainError
from workspace.services import workflow_create


class Command(BaseCommand):
    help = (
        "Create a workflow (at human_only) whose admin is --admin. That user must be "
        "allowed to create workflows (see workflow_grant_creator), or be a superuser."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--labels", required=True, help="Comma-separated, in order.")
        parser.add_argument("--admin", required=True, help="Username of its first admin.")
        parser.add_argument("--description", default="")
        parser.add_argument("--instructions-file", default=None, help="Markdown file.")

    def handle(self, *args: Any, **options: Any) -> None:
        admin = get_user_model().objects.filter(username=options["admin"]).first()
        if admin is None:
            raise CommandError(f"no user {options['admin']!r}")
        instructions = ""
        if options["instructions_file"]:
            with open(options["instructions_file"], encoding="utf-8") as handle:
                instructions = handle.read()
        labels = [label.strip() for label in options["labels"].split(",") if label.strip()]
        try:
            workflow = workflow_create(
                creator=admin,
                slug=options["slug"],
                name=options["name"],
                labels=labels,
                description=options["description"],
                instructions=instructions,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Workflow {workflow.slug} created at {workflow.level}; admin: {admin.username}."
        )
