"""The login lockout's authentication backend."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for logins that come with a request.

    Every web login (``/login/``, ``/admin/login/``) passes its request and is checked.
    ``authenticate()`` without a request (a script, ``Client.login`` in tests) has no
    client to count failures for; it is left to the next backend instead of failing.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
