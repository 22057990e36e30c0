"""Forget cached tokens when a token or its user changes (``kernel.readcache``, D125).

Receivers on the models, not calls in the services: the Django admin, the workspace,
management commands and the shell all write these rows, and a write that forgot to
invalidate would leave a revoked token or a deactivated user working. A queryset
``update()`` sends no signal: the only one on these rows is the last-used stamp, which
no cached answer depends on (``accounts.services.api_token_touch``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from accounts.models import ApiToken
from accounts.selectors import api_token_cache_key
from kernel.readcache import invalidate


def _token_changed(sender: Any, instance: ApiToken, created: bool = False, **_: Any) -> None:
    if created:
        return  # a key that matched nothing is never cached
    invalidate([api_token_cache_key(instance.key_hash)])


def _user_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no token; a login changes nothing a token needs
    hashes = ApiToken.objects.filter(user_id=instance.pk).values_list("key_hash", flat=True)
    invalidate([api_token_cache_key(key_hash) for key_hash in hashes])


def connect() -> None:
    user_model = get_user_model()
    post_save.connect(_token_changed, sender=ApiToken, dispatch_uid="access-cache-token-save")
    post_delete.connect(_token_changed, sender=ApiToken, dispatch_uid="access-cache-token-del")
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="access-cache-user-save")
    post_delete.connect(_user_changed, sender=user_model, dispatch_uid="access-cache-user-del")
