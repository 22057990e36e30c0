"""Reads for API tokens: find the token a presented key belongs to."""

from __future__ import annotations

import hmac

from accounts.models import KEY_PREFIX_LENGTH, ApiToken
from accounts.services import api_token_hash
from kernel.readcache import access_key, cached_read


def api_token_cache_key(key_hash: str) -> str:
    return access_key("token", key_hash)


def api_token_for_key(key: str) -> ApiToken | None:
    """The token whose key is ``key`` (usable or not), with its user, or None.

    Rows are found by the key's prefix; the full hash is compared in constant time, so
    the answer's timing does not tell how much of a guessed key was right. A token found
    is cached under its hash (``kernel.readcache``; ``accounts.invalidation`` forgets it
    when the token or its user changes); a key that matches nothing is never cached.
    """
    if len(key) < KEY_PREFIX_LENGTH:
        return None
    presented = api_token_hash(key)

    def load() -> ApiToken | None:
        found = None
        candidates = ApiToken.objects.select_related("user").filter(
            key_prefix=key[:KEY_PREFIX_LENGTH]
        )
        for token in candidates:
            if hmac.compare_digest(token.key_hash, presented):
                found = token
        return found

    return cached_read(api_token_cache_key(presented), load, cache_absent=False)
