"""The user types every app names in its signatures.

``AUTH_USER_MODEL`` is Django's own ``auth.User`` (the settings leave it at the default),
so services and selectors take a ``User``. A request's ``user`` may be the anonymous
user (``RequestUser``) until authentication is required; views that require it (DRF's
default ``IsAuthenticated``, ``login_required``) annotate their request as
``AuthenticatedRequest`` or ``AuthenticatedHttpRequest``, whose user is a ``User``.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from rest_framework.request import Request

RequestUser = User | AnonymousUser


class AuthenticatedRequest(Request):
    """A DRF request whose view requires a signed-in user. Only ever an annotation."""

    user: User


class AuthenticatedHttpRequest(HttpRequest):
    """A Django request whose view is ``login_required``. Only ever an annotation."""

    user: User


__all__ = ["AuthenticatedHttpRequest", "AuthenticatedRequest", "RequestUser", "User"]
