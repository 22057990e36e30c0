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

import math
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
    """``SimpleRateThrottle`` kept as one number per caller, where a request may cost more
    than one (``view.throttle_cost``).

    A rate of N per W seconds is a generic cell rate (GCRA, D136): each unit spent moves
    the caller's theoretical arrival time (``tat``) on by W / N seconds, and a request is
    let through when that leaves ``tat`` at most W ahead of now. So a caller may spend
    the whole N at once, then one unit every W / N seconds; over any long span at most N
    per W. DRF's own throttle keeps a timestamp per request instead: at a camera's 6,000
    a minute that list is read and written whole on every request (0.6 ms of CPU each).
    On Redis (production) the read and the write are one atomic script
    (``RedisCache.gcra_spend``, D142): one round trip, and no two processes let the same
    unit through. On another cache (the embedded default: one machine, files) they are
    two cache calls, as DRF's are.
    """

    cache_format = "throttle_tat_%(scope)s_%(ident)s"
    cost = 1
    retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        limit, window = self.parse_rate(self.rate)
        if limit is None or window is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        if limit == 0:
            # A rate of none ("0/min") refuses every request, as a throttle: 429.
            self.retry_after = float(window)
            return False
        self.cost = max(1, int(getattr(view, "throttle_cost", None) or 1))
        if self.cost > limit:
            raise InvalidInput(
                f"images: {self.cost} items is more than this caller's rate of "
                f"{limit} per {window} s allows; send at most {limit} in one request",
                field="images",
            )
        self.now = self.timer()
        interval = window / limit
        spend = getattr(self.cache, "gcra_spend", None)
        if spend is not None:
            # Redis (kernel.rediscache): the read and the write in one atomic script.
            self.retry_after = spend(
                self.key, now=self.now, cost_seconds=self.cost * interval, window=float(window)
            )
            return self.retry_after is None
        stored = self.cache.get(self.key)
        tat = max(stored if isinstance(stored, float) else 0.0, self.now) + self.cost * interval
        ahead = tat - self.now
        if ahead > window:
            self.retry_after = ahead - window
            return False
        self.cache.set(self.key, tat, math.ceil(ahead))
        return True

    def wait(self) -> float | None:
        return self.retry_after


class ApiTokenRateThrottle(CostedRateThrottle):
    """Requests made with one API token: its own rate, or the "token" default."""

    scope = "token"

    def allow_request(self, request: Request, view: APIView) -> bool:
        token = _token_of(request)
        if token is None:
            return True
        self.rate = token.throttle_rate or self.get_rate()
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


class AnonymousRateThrottle(CostedRateThrottle):
    scope = "anon"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}
