"""Writes for API tokens. A key is returned once, by ``api_token_create``, and never again."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import KEY_PREFIX_LENGTH, ApiToken
from accounts.types import User
from kernel.errors import InvalidInput, NotFound
from kernel.readcache import access_key

# A key's random part: 32 bytes, URL-safe base64 (43 characters).
KEY_BYTES = 32
# Record a token's use at most this often, so that every request does not write a row.
LAST_USED_RESOLUTION = timedelta(minutes=1)
RATE_PATTERN = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def throttle_rate_validate(rate: str) -> str:
    rate = rate.strip()
    if rate and not RATE_PATTERN.match(rate):
        raise InvalidInput(
            f'throttle_rate {rate!r} is not a rate like "600/min" (s, min, hour, day)',
            field="throttle_rate",
        )
    return rate


@transaction.atomic
def api_token_create(
    *,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    throttle_rate: str = "",
) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its key. The key is not stored: show it now or lose it."""
    name = name.strip()
    if not name:
        raise InvalidInput("a token needs a name", field="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("expires_at is in the past", field="expires_at")
    key = secrets.token_urlsafe(KEY_BYTES)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        key_prefix=key[:KEY_PREFIX_LENGTH],
        key_hash=api_token_hash(key),
        expires_at=expires_at,
        throttle_rate=throttle_rate_validate(throttle_rate),
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, token_id: int, user: User | None = None) -> ApiToken:
    """Revoke a token (idempotent: a revoked token keeps its first revocation time).

    With ``user``, only that user's own token can be revoked (404 for anyone else's).
    """
    tokens = ApiToken.objects.select_for_update()
    if user is not None:
        tokens = tokens.filter(user=user)
    token = tokens.filter(pk=token_id).first()
    if token is None:
        raise NotFound(f"token {token_id!r} not found")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


# Per process: until when (``time.monotonic``) a token's use needs no recording, by key
# hash (unique per token, unlike a primary key a rolled-back test may hand out again).
_RECORDED_UNTIL: dict[str, float] = {}
_RECORDED_MAX = 10_000


def api_token_touch(*, token: ApiToken) -> None:
    """Record that the token was used, at most once per ``LAST_USED_RESOLUTION``.

    ``token`` may be a cached copy (``accounts.selectors.api_token_for_key``) whose stamp
    is older than the row's, so the web processes agree through the cache on who writes
    next: one marker per token and resolution, taken with ``cache.add``. Each process then
    skips the marker for one resolution too, so a busy token costs no cache call per
    request (D142); the stamp stays at most two resolutions old.
    """
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    seconds = LAST_USED_RESOLUTION.total_seconds()
    clock = time.monotonic()
    if _RECORDED_UNTIL.get(token.key_hash, 0.0) > clock:
        return
    if len(_RECORDED_UNTIL) >= _RECORDED_MAX:
        _RECORDED_UNTIL.clear()
    _RECORDED_UNTIL[token.key_hash] = clock + seconds
    marker = access_key("token-used", token.pk)
    if not cache.add(marker, True, int(seconds)):
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
