"""Reads for API tokens: find the token a presented key belongs to."""

from __future__ import annotations

import hmac

from accounts.models import KEY_PREFIX_LENGTH, ApiToken
from accounts.services import api_token_hash


def api_token_for_key(key: str) -> ApiToken | None:
    """The token whose key is ``key`` (usable or not), or None.

    Rows are found by the key's prefix; the full hash is compared in constant time, so
    the answer's timing does not tell how much of a guessed key was right.
    """
    if len(key) < KEY_PREFIX_LENGTH:
        return None
    presented = api_token_hash(key)
    found = None
    candidates = ApiToken.objects.select_related("user").filter(key_prefix=key[:KEY_PREFIX_LENGTH])
    for token in candidates:
        if hmac.compare_digest(token.key_hash, presented):
            found = token
    return found
