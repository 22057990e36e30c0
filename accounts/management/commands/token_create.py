"""Make an API token for a user and print its key, once (it is stored only as a hash)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.services import api_token_create
from kernel.errors import DomainError


class Command(BaseCommand):
    help = "Create an API token for a user and print its key once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the token is for.")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Expire after this many days."
        )
        parser.add_argument(
            "--throttle-rate", default="", help='This token\'s rate, e.g. "600/min".'
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        days = options["expires_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-days must be positive")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            token, key = api_token_create(
                user=user,
                name=options["name"],
                expires_at=expires_at,
                throttle_rate=options["throttle_rate"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"Token {token.name!r} for {user.username} (expires: {expiry}).")
        self.stderr.write("The key is shown only now; it is stored as a hash:")
        self.stdout.write(key)
