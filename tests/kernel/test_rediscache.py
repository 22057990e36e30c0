"""The Redis cache backend keeps one client per connection pool, and spends a rate in one
atomic script (kernel.rediscache)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from kernel.rediscache import RedisCache
from tests.conftest import require_postgres_and_redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache() -> RedisCache:
    require_postgres_and_redis()
    from django.conf import settings

    return RedisCache(settings.CELERY_BROKER_URL, {"KEY_PREFIX": f"t-{uuid.uuid4().hex}"})


def test_one_client_serves_every_call(cache: RedisCache) -> None:
    first = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client(write=False) is first  # one server: reads go there too
    # Django's own backend builds a client per call; this is what the subclass saves.
    django_cache = DjangoRedisCache(cache._servers[0], {})
    assert django_cache._cache.get_client() is not django_cache._cache.get_client()


def test_it_stores_reads_counts_and_deletes_like_django_s(cache: RedisCache) -> None:
    cache.set("rate", 1.5, 30)
    assert cache.get("rate") == 1.5
    assert cache.add("rate", 9.0) is False
    cache.set("n", 1)
    assert cache.incr("n", 2) == 3
    cache.set_many({"a": [1, 2], "b": {"x": "y"}})
    assert cache.get_many(["a", "b", "missing"]) == {"a": [1, 2], "b": {"x": "y"}}
    cache.delete_many(["a", "b", "n", "rate"])
    assert cache.get("rate") is None


def test_settings_use_it_for_a_redis_cache_url() -> None:
    """In a fresh process, as production starts: a redis:// cache URL gets this backend."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOOPGATE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="loopgate.settings",
        DJANGO_SECRET_KEY="x" * 50,
        LOOPGATE_CACHE_URL="redis://127.0.0.1:6379/9",
    )
    code = (
        "import django; django.setup(); from django.core.cache import caches; "
        "c = caches['default']; print(type(c).__module__, type(c).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["kernel.rediscache", "RedisCache"]


def _throttle_on(backing: Any, clock: list[float], rate: str) -> Any:
    from loopgate.throttling import CostedRateThrottle

    class Rate(CostedRateThrottle):
        cache = backing
        timer = staticmethod(lambda: clock[0])

        def get_cache_key(self, request: Any, view: Any) -> str:
            return "throttle_tat_test_redis"

    Rate.rate = rate
    return Rate


class _Caller:
    throttle_cost: int | None = None


def _ask(throttle_class: Any, cost: int) -> tuple[bool, float | None]:
    view = _Caller()
    view.throttle_cost = cost
    throttle = throttle_class()
    return throttle.allow_request(None, view), throttle.wait()


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.integers(1, 50),
    steps=st.lists(st.tuples(st.floats(0, 30, allow_nan=False), st.integers(1, 5)), max_size=40),
)
def test_the_rate_on_redis_answers_as_the_two_call_rate_does(
    cache: RedisCache, limit: int, steps: list[tuple[float, int]]
) -> None:
    """The atomic script (D142) and the read-then-write path on another cache agree on every
    answer and every wait, over any sequence of requests and costs."""
    from django.core.cache.backends.locmem import LocMemCache

    key = uuid.uuid4().hex
    local = LocMemCache(key, {})
    clock = [1_764_000_000.0]
    on_redis = _throttle_on(cache, clock, f"{limit}/min")
    on_locmem = _throttle_on(local, clock, f"{limit}/min")
    on_redis.get_cache_key = on_locmem.get_cache_key = lambda self, r, v: f"throttle_{key}"
    for advance, cost in steps:
        clock[0] += advance
        if cost > limit:
            continue
        redis_allowed, redis_wait = _ask(on_redis, cost)
        local_allowed, local_wait = _ask(on_locmem, cost)
        assert redis_allowed == local_allowed
        if redis_wait is None or local_wait is None:
            assert redis_wait is local_wait is None
        else:
            assert redis_wait == pytest.approx(local_wait, abs=1e-3)
    cache.delete(f"throttle_{key}")


def test_callers_at_one_instant_never_get_more_than_the_rate(cache: RedisCache) -> None:
    """Eight threads spend under one key at once: exactly the rate gets through (the read
    and the write of the two-call path could both let a request through)."""
    clock = [1_764_000_000.0]
    throttle_class = _throttle_on(cache, clock, "40/min")
    throttle_class.get_cache_key = lambda self, r, v: "throttle_tat_test_race"
    cache.delete("throttle_tat_test_race")
    barrier = threading.Barrier(8)
    allowed = []

    def spend() -> None:
        barrier.wait()
        allowed.extend(_ask(throttle_class, 1)[0] for _ in range(25))

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 200
    assert sum(allowed) == 40
    cache.delete("throttle_tat_test_race")


def test_the_rate_s_key_expires_when_it_is_no_longer_ahead(cache: RedisCache) -> None:
    now = time.time()
    assert cache.gcra_spend("gcra-ttl", now=now, cost_seconds=2.5, window=60.0) is None
    client = cache._cache.get_client(write=True)
    # The key lives as long as the arrival time is ahead of now: 2.5 s here, not a window.
    assert 0 < client.ttl(cache.make_and_validate_key("gcra-ttl")) <= 3
    # Over the window: refused with the wait, and nothing stored.
    for _ in range(23):
        assert cache.gcra_spend("gcra-ttl", now=now, cost_seconds=2.5, window=60.0) is None
    wait = cache.gcra_spend("gcra-ttl", now=now, cost_seconds=2.5, window=60.0)
    assert wait == pytest.approx(2.5)
    assert 3 < client.ttl(cache.make_and_validate_key("gcra-ttl")) <= 60
    cache.delete("gcra-ttl")


def test_a_request_exactly_at_the_limit_is_let_through_at_any_instant(cache: RedisCache) -> None:
    """The stored arrival time reads back as the same number: spending the whole window
    at an epoch-sized instant is never refused by a rounding of the stored value."""
    import random

    rng = random.Random(7)
    for attempt in range(40):
        now = 1_764_000_000 + rng.random() * 10_000_000
        key = f"gcra-limit-{attempt}"
        answers = [cache.gcra_spend(key, now=now, cost_seconds=2.5, window=60.0) for _ in range(24)]
        assert answers == [None] * 24, (now, answers)
        assert cache.gcra_spend(key, now=now, cost_seconds=2.5, window=60.0) == pytest.approx(2.5)
        cache.delete(key)
