"""API rate limits, and the one definition of a client's address.

Counts live in Django's cache (settings ``CACHES``), shared by every web process. A
token's own ``throttle_rate`` overrides the default rate for tokens; people using the
API through their session share the "user" rate; anonymous requests the "anon" rate
(most are refused with 401 before a throttle runs, but nothing is free to hammer).

A request costs one, unless its view says otherwise: a view with ``throttle_cost`` set
(``POST …/cases/bulk/``: its item count, docs/decisions.md D115) spends that many from
the same budget, all or nothing: a request that does not fit is refused with 429 and a
``Retry-After`` for when it would, and one larger than the whole rate with 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle

from kernel.errors import InvalidInput

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from accounts.models import ApiToken


def client_ip(request: HttpRequest) -> str:
    """The client's address: with ``LOOPGATE_PROXY_COUNT`` proxies in front, the entry the
    outermost of them added to X-Forwarded-For (entries further left can be forged)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if not settings.PROXY_COUNT:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if not forwarded:
        return remote
    return forwarded[-min(settings.PROXY_COUNT, len(forwarded))]


def _token_of(request: Request) -> ApiToken | None:
    from accounts.models import ApiToken

    return request.auth if isinstance(request.auth, ApiToken) else None


class CostedRateThrottle(SimpleRateThrottle):
    """``SimpleRateThrottle`` where a request may cost more than one (``view.throttle_cost``).

    The history holds one timestamp per unit spent, newest first, as DRF keeps it, so a
    costed request and single ones share one budget and one cache entry.
    """

    cost = 1
    limit = 0
    window = 0

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.cost = max(1, int(getattr(view, "throttle_cost", None) or 1))
        if self.cost == 1:
            return super().allow_request(request, view)
        limit, window = self.parse_rate(self.rate)
        if limit is None or window is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.limit, self.window = limit, window
        if self.cost > limit:
            raise InvalidInput(
                f"images: {self.cost} items is more than this caller's rate of "
                f"{limit} per {window} s allows; send at most {limit} in one request",
                field="images",
            )
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - window:
            self.history.pop()
        if len(self.history) + self.cost > limit:
            return self.throttle_failure()
        self.history[:0] = [self.now] * self.cost
        self.cache.set(self.key, self.history, window)
        return True

    def wait(self) -> float | None:
        if self.cost == 1:
            return super().wait()
        # Enough room once the entry at index limit - cost (newest first) expires.
        index = self.limit - self.cost
        if index >= len(self.history):
            return None
        return max(0.0, self.history[index] + self.window - self.now)


class ApiTokenRateThrottle(CostedRateThrottle):
    """Requests made with one API token: its own rate, or the "token" default."""

    scope = "token"

    def allow_request(self, request: Request, view: APIView) -> bool:
        token = _token_of(request)
        if token is None:
            return True
        self.rate = token.throttle_rate or self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = _token_of(request)
        return (
            None if token is None else self.cache_format % {"scope": self.scope, "ident": token.pk}
        )


class SessionUserRateThrottle(CostedRateThrottle):
    """Requests of a logged-in person through the session (not through a token)."""

    scope = "user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if _token_of(request) is not None or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AnonymousRateThrottle(SimpleRateThrottle):
    scope = "anon"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}
