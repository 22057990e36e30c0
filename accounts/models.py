"""API tokens: stored as a SHA-256 hash, with an optional expiry and a revocation time.

The key itself is shown once, when the token is made (``accounts.services``), and is
never stored. A key is 32 random bytes, so a fast hash is enough: there is nothing to
guess by brute force that is not already 256 bits of randomness.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

KEY_PREFIX_LENGTH = 8


class ApiToken(models.Model):
    """One named key of one user; it acts with that user's rights.

    ``key_prefix`` (the key's first characters) finds the candidate rows; the full key is
    checked against ``key_hash`` in constant time. The prefix is indexed but not unique:
    keys migrated from the old plaintext table kept their own first characters.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    throttle_rate = models.CharField(
        max_length=32,
        blank=True,
        help_text='Requests allowed for this token, e.g. "600/min"; empty: the default rate.',
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…) of {self.user}"

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
