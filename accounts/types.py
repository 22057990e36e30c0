"""The user types every app names in its signatures.

``AUTH_USER_MODEL`` is Django's own ``auth.User`` (the settings leave it at the default),
so services and selectors take a ``User``; a view's ``request.user`` may also be the
anonymous user until authentication is required, hence ``RequestUser``.
"""

from django.contrib.auth.models import AnonymousUser, User

RequestUser = User | AnonymousUser

__all__ = ["RequestUser", "User"]
